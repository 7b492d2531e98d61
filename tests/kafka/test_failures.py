"""The Kafka bus when things break: the broker stops and comes back; a worker process is
killed and restarted while another one shares its consumer group."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from confluent_kafka.admin import AdminClient

from bnpl.messaging.kafka import KafkaBus, LocalCluster
from tests.kafka.conftest import Scratch, options_for
from tests.kafka.support import effects, emit, exactly_once, recorder, running, wait_for
from tests.kafka.worker import CONSUMER

ROOT = Path(__file__).resolve().parents[2]


async def test_events_wait_in_the_outbox_while_the_broker_is_down(
    kafka: LocalCluster, scratch: Scratch
) -> None:
    db = scratch.db
    bus = KafkaBus(db, poll_interval=0.05, options=options_for(kafka))
    bus.subscribe("probe.record", ["plan.created"], recorder("probe.record"))
    async with running(bus):
        before = await emit(db, [("plan.created", f"agg_{n}", n) for n in range(50)])
        await bus.drain(timeout=30)
        kafka.stop_node(1)  # a clean shutdown of the only broker
        try:
            outage = []
            for tick in range(30):  # commits go on during the outage (the API is not held up)
                outage += await emit(db, [("plan.created", f"agg_{n}", tick) for n in range(10)])
                await asyncio.sleep(0.1)
            unrelayed = await db.fetchval(
                "SELECT count(*) FROM messaging.events WHERE position IS NULL"
            )
            assert unrelayed == len(outage)  # every one of them waits in the outbox
            assert not set(outage) & {r["event_id"] for r in await effects(db)}
        finally:
            kafka.start_node(1)
        after = await emit(db, [("plan.created", f"agg_{n}", 99) for n in range(10)])
        await bus.drain(timeout=60)
    await exactly_once(db, "probe.record", [*before, *outage, *after])


@contextmanager
def worker(
    scratch: Scratch, kafka: LocalCluster, prefix: str, name: str
) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.kafka.worker", scratch.dsn, kafka.bootstrap, prefix, name],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(30)


async def test_a_killed_worker_is_replaced_and_resumes_from_its_committed_offsets(
    kafka: LocalCluster, scratch: Scratch
) -> None:
    db = scratch.db
    prefix = options_for(kafka).prefix
    handled: list[str] = []

    async def all_handled(ids: list[str]) -> None:
        handled.extend(ids)

        async def done() -> bool:
            return len(await effects(db)) >= len(handled)

        await wait_for(done, timeout=40)

    def by(worker_name: str, rows: list) -> set[str]:  # type: ignore[type-arg]
        return {r["event_id"] for r in rows if r["worker"] == worker_name}

    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})

    async def members(count: int) -> None:
        """Wait until the group is stable with `count` members, each with partitions."""

        def describe() -> bool:
            group = admin.describe_consumer_groups([f"{prefix}.{CONSUMER}"], request_timeout=5)[
                f"{prefix}.{CONSUMER}"
            ].result(timeout=10)
            return (
                str(group.state) == "ConsumerGroupState.STABLE"
                and len(group.members) == count
                and all(m.assignment.topic_partitions for m in group.members)
            )

        async def formed() -> bool:
            try:
                return await asyncio.to_thread(describe)
            except Exception:
                return False

        await wait_for(formed, timeout=30, every=0.2)

    with worker(scratch, kafka, prefix, "a") as a, worker(scratch, kafka, prefix, "b"):
        await members(2)
        first = await emit(db, [("plan.created", f"agg_{n % 40}", n) for n in range(200)])
        await all_handled(first)
        rows = await effects(db)
        assert by("a", rows) and by("b", rows)  # the two share the group's partitions
        a.send_signal(signal.SIGKILL)  # a crash: no leaving the group, no last commit
        a.wait(10)
        second = await emit(db, [("plan.created", f"agg_{n % 40}", n) for n in range(200)])
        await all_handled(second)  # b took a's partitions over
        assert set(second) <= by("b", await effects(db))
        with worker(scratch, kafka, prefix, "a2"):
            await members(2)
            third = await emit(db, [("plan.created", f"agg_{n % 40}", n) for n in range(200)])
            await all_handled(third)
            await asyncio.sleep(1)  # anything read twice would have been handled by now
            assert by("a2", await effects(db))  # the restarted worker has partitions again
            # Its partitions resumed where the group had committed: nothing before was
            # handled again, and the group has nothing left to read.
            assert not by("a2", await effects(db)) & (set(first) | set(second))
    await exactly_once(db, CONSUMER, [*first, *second, *third])
    bus = KafkaBus(db, options=options_for(kafka, prefix=prefix))
    bus.subscribe(CONSUMER, ["plan.created"], recorder(CONSUMER))
    assert await bus.lag(bus.subscriptions[CONSUMER]) == 0
