"""The outbox relay: committed outbox rows published to Kafka, each exactly once normally.

The outbox is shared out into `relay_partitions` by a hash of the aggregate id. A relay takes
the partitions it can in one transaction (`pg_try_advisory_xact_lock`, so two relay processes
never work on one partition at once), reads their unrelayed rows in id order, publishes them
with an idempotent producer (`acks=all`), waits until the brokers acknowledged every one, then
marks them relayed (`position` = the row's id: in this backend there is no sequencer, and the
partial index over `position IS NULL` is the relay's queue) and commits. A batch the brokers
did not acknowledge in time (a broker down) is rolled back and stays in the outbox for the next
try: the outbox is the buffer, the API never waits for the broker. Published-but-rolled-back
rows are published again then, and consumers drop the copy (their inbox).

Per aggregate the order holds: one aggregate's rows are in one relay partition, read in id
order by one relay at a time, and produced to one Kafka partition by an idempotent producer.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field

from confluent_kafka import KafkaError, Message, Producer
from confluent_kafka.admin import AdminClient

from bnpl.kit.db import Database
from bnpl.messaging.events import Event
from bnpl.messaging.kafka.topics import KafkaOptions, encode, ensure_topics

log = logging.getLogger(__name__)

RELAY_LOCK = 0x424E5052  # "BNPR": advisory locks (RELAY_LOCK, relay partition)


def producer_config(options: KafkaOptions) -> dict[str, object]:
    return {
        "bootstrap.servers": options.bootstrap,
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": 5,
        "compression.type": "lz4",
        "message.timeout.ms": options.message_timeout_ms,
        "socket.connection.setup.timeout.ms": 3000,
        "reconnect.backoff.max.ms": 1000,
        "logger": logging.getLogger("bnpl.kafka.client"),  # librdkafka's own messages
    }


class RelayError(RuntimeError):
    pass


@dataclass
class OutboxRelay:
    db: Database
    options: KafkaOptions
    executor: Executor | None = None
    batch_size: int = 1000
    # Creates the topics not known to exist yet (the bus's, sharing what it knows); by
    # default the relay's own.
    ensure: Callable[[set[str]], Awaitable[None]] | None = None
    _producer: Producer | None = None
    _admin: AdminClient | None = None
    _topics: set[str] = field(default_factory=set)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    @property
    def producer(self) -> Producer:
        if self._producer is None:
            self._producer = Producer(producer_config(self.options))
        return self._producer

    async def pending(self) -> bool:
        found: bool = await self.db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM messaging.events WHERE position IS NULL)"
        )
        return found

    async def run_once(self) -> int:
        """Relay one batch of every partition this relay could lock; how many events."""
        async with self._lock:  # one batch at a time per process (one producer flush)
            mask = self.options.relay_partitions - 1
            async with self.db.transaction() as conn:
                owned = await conn.fetchval(
                    """
                    SELECT array_agg(p) FROM (
                        SELECT DISTINCT hashtext(aggregate_id) & $1 AS p
                        FROM messaging.events WHERE position IS NULL
                    ) pending
                    WHERE pg_try_advisory_xact_lock($2, p)
                    """,
                    mask,
                    RELAY_LOCK,
                )
                if not owned:
                    return 0
                rows = await conn.fetch(
                    """
                    SELECT id, event_id, type, aggregate_id, data, occurred_at, merchant_id,
                           consumer_id, id AS position
                    FROM messaging.events
                    WHERE position IS NULL AND (hashtext(aggregate_id) & $1) = ANY($2::int[])
                    ORDER BY id LIMIT $3
                    """,
                    mask,
                    owned,
                    self.batch_size,
                )
                if not rows:
                    return 0
                events = [Event.from_row(r) for r in rows]
                await self.publish(events)
                await conn.execute(
                    "UPDATE messaging.events SET position = id WHERE id = ANY($1::bigint[])",
                    [r["id"] for r in rows],
                )
                return len(rows)

    async def publish(self, events: list[Event]) -> None:
        """Produce the events and return once the brokers acknowledged every one."""
        topics = {self.options.topic_of(e.type) for e in events}
        if self.ensure is not None:
            await self.ensure(topics)
        elif topics - self._topics:
            if self._admin is None:
                self._admin = AdminClient({"bootstrap.servers": self.options.bootstrap})
            await ensure_topics(self._admin, self.options, topics - self._topics)
            self._topics |= topics
        producer = self.producer
        failures: list[KafkaError] = []

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            if err is not None:
                failures.append(err)

        for event in events:
            while True:
                try:
                    producer.produce(
                        self.options.topic_of(event.type),
                        key=event.aggregate_id.encode(),
                        value=encode(event),
                        headers=[("type", event.type.encode())],
                        on_delivery=delivered,
                    )
                    break
                except BufferError:  # the local queue is full: let it drain a little
                    await asyncio.get_running_loop().run_in_executor(
                        self.executor, producer.poll, 0.1
                    )
        timeout = self.options.message_timeout_ms / 1000 + 5
        left = await asyncio.get_running_loop().run_in_executor(
            self.executor, producer.flush, timeout
        )
        if failures or left:
            fatal = [f for f in failures if f.fatal()]
            if fatal:
                log.error("the relay's producer failed for good; a new one is made")
                self._producer = None
            first = failures[0] if failures else f"{left} unacknowledged"
            raise RelayError(f"{len(failures) or left} of {len(events)} not published: {first}")

    async def close(self) -> None:
        if self._producer is not None:
            await asyncio.get_running_loop().run_in_executor(self.executor, self._producer.flush, 5)
            self._producer = None
