"""Three brokers (replication 3, min.insync.replicas 2): one killed under load; the relay and
the consumers carry on, and every event is applied once."""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bnpl.messaging.kafka import KafkaBus, LocalCluster
from tests.kafka.conftest import Scratch, options_for
from tests.kafka.support import emit, exactly_once, recorder, running


@pytest.fixture(scope="module")
def three(kafka_libs: Path) -> Iterator[LocalCluster]:
    with tempfile.TemporaryDirectory(prefix="bnpl-kafka3-") as folder:
        cluster = LocalCluster(kafka_libs, Path(folder), nodes=3, base_port=0, heap="384m")
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


async def test_one_of_three_brokers_killed_under_load(
    three: LocalCluster, scratch: Scratch
) -> None:
    assert three.replication == 3 and three.min_insync == 2
    db = scratch.db
    options = options_for(three, message_timeout_ms=10_000)
    bus = KafkaBus(db, poll_interval=0.05, options=options)
    bus.subscribe("probe.record", ["plan.created"], recorder("probe.record"))
    emitted: list[str] = []

    async def load(ticks: int) -> None:
        for tick in range(ticks):
            emitted.extend(await emit(db, [("plan.created", f"agg_{n}", tick) for n in range(10)]))
            await asyncio.sleep(0.05)

    async with running(bus):
        await load(20)
        await bus.drain(timeout=60)
        traffic = asyncio.create_task(load(60))
        await asyncio.sleep(1)
        three.stop_node(2, kill=True)  # SIGKILL: a crash, under load
        await traffic
        await bus.drain(timeout=90)
        assert not await db.fetchval("SELECT count(*) FROM messaging.events WHERE position IS NULL")
    await exactly_once(db, "probe.record", emitted)
    assert len(emitted) == 800
