"""A worker process for the Kafka tests: one `KafkaBus` running the probe consumer, until
SIGTERM (or SIGKILL, to play a crash).

    python -m tests.kafka.worker DSN BOOTSTRAP PREFIX WORKER_NAME
"""

from __future__ import annotations

import asyncio
import signal
import sys

from bnpl.kit.db import Database
from bnpl.messaging.kafka import KafkaBus, KafkaOptions
from tests.kafka.support import recorder

CONSUMER = "probe.record"
TYPES = ["plan.created"]


async def main(dsn: str, bootstrap: str, prefix: str, name: str) -> None:
    db = Database(dsn, min_size=1, max_size=4)
    await db.open()
    options = KafkaOptions(
        bootstrap=bootstrap, prefix=prefix, partitions=4, session_timeout_ms=3000
    )
    bus = KafkaBus(db, poll_interval=0.05, options=options)
    bus.subscribe(CONSUMER, TYPES, recorder(CONSUMER, worker=name))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    await bus.start()
    print("ready", flush=True)
    await stop.wait()
    await bus.stop()
    await db.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
