"""The Kafka backend of the bus (`BNPL_KAFKA_BOOTSTRAP`) and a local Apache Kafka cluster.

- `KafkaBus`: the bus on Kafka (bus.py), `OutboxRelay` its publisher (relay.py);
- `KafkaOptions`: topics, partitions, replicas, retries (topics.py);
- `install`, `LocalCluster`: the broker's jars from Maven Central and a KRaft cluster of one
  or three nodes on loopback (broker.py; `bnpl kafka`).
"""

from bnpl.messaging.kafka.broker import KAFKA_VERSION, LocalCluster, install, running_cluster
from bnpl.messaging.kafka.bus import KafkaBus
from bnpl.messaging.kafka.relay import OutboxRelay
from bnpl.messaging.kafka.topics import KafkaOptions

__all__ = [
    "KAFKA_VERSION",
    "KafkaBus",
    "KafkaOptions",
    "LocalCluster",
    "OutboxRelay",
    "install",
    "running_cluster",
]
