"""The PostgreSQL event bus: outbox publish, at-least-once delivery to every consumer,
idempotent handling through the inbox, per-aggregate order, several workers, dead letters.

Each test has a database of its own and its own `PostgresBus` instances, so it controls every
subscription.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
import pytest

from bnpl.kit.db import Database
from bnpl.messaging import Event, NewEvent, PostgresBus, publish, publish_many
from tests.integration.foundation.conftest import Scratch

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

EFFECTS = """
CREATE TABLE public.effects (
    n bigserial PRIMARY KEY,
    consumer text NOT NULL,
    worker text NOT NULL,
    event_id text NOT NULL,
    aggregate_id text NOT NULL,
    seq integer
)
"""


class Recorder:
    """Handlers that write their effect in the handler's transaction and count invocations."""

    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str]] = Counter()  # (consumer, event_id)
        self.order: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.active = 0
        self.max_active = 0

    def handler(self, consumer: str, worker: str = "w", delay: float = 0.0):  # type: ignore[no-untyped-def]
        async def handle(conn: asyncpg.Connection, event: Event) -> None:
            self.calls[(consumer, event.event_id)] += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            try:
                seq = event.data.get("seq")
                await conn.execute(
                    "INSERT INTO public.effects (consumer, worker, event_id, aggregate_id, seq) "
                    "VALUES ($1, $2, $3, $4, $5)",
                    consumer,
                    worker,
                    event.event_id,
                    event.aggregate_id,
                    seq,
                )
                if delay:
                    await asyncio.sleep(random.random() * delay)
                if seq is not None:
                    self.order[(consumer, event.aggregate_id)].append(seq)
            finally:
                self.active -= 1

        return handle


async def effects(db: Database, consumer: str | None = None) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM public.effects WHERE $1::text IS NULL OR consumer = $1 ORDER BY n",
        consumer,
    )


async def emit(
    db: Database, events: Iterable[tuple[str, str, int]], *, merchant_id: str | None = None
) -> list[str]:
    """Publish (type, aggregate, seq) events in one committed transaction."""
    async with db.transaction() as conn:
        return [
            await publish(
                conn, type_, aggregate, {"seq": seq}, occurred_at=NOW, merchant_id=merchant_id
            )
            for type_, aggregate, seq in events
        ]


@asynccontextmanager
async def running(*buses: PostgresBus) -> AsyncIterator[None]:
    for bus in buses:
        await bus.start()
    try:
        yield
    finally:
        for bus in buses:
            await bus.stop()


@pytest.fixture
async def db(scratch: Scratch) -> Database:
    await scratch.db.execute(EFFECTS)
    return scratch.db


async def test_rolled_back_events_are_never_delivered(db: Database) -> None:
    recorder, bus = Recorder(), PostgresBus(db, poll_interval=0.01)
    bus.subscribe("probe.record", ["probe.happened"], recorder.handler("probe.record"))
    async with running(bus):
        with pytest.raises(RuntimeError):
            async with db.transaction() as conn:
                await publish(conn, "probe.happened", "agg_1", {"seq": 1}, occurred_at=NOW)
                raise RuntimeError("the business change failed")
        (kept,) = await emit(db, [("probe.happened", "agg_1", 2)])
        await bus.drain(timeout=10)
    assert [r["event_id"] for r in await effects(db)] == [kept]
    assert await db.fetchval("SELECT count(*) FROM messaging.events") == 1


async def test_every_subscriber_gets_each_of_its_events_once(db: Database) -> None:
    recorder, bus = Recorder(), PostgresBus(db, poll_interval=0.01)
    seen: list[Event] = []

    async def keep(conn: asyncpg.Connection, event: Event) -> None:
        seen.append(event)

    bus.subscribe("probe.a_only", ["probe.a"], recorder.handler("probe.a_only"))
    bus.subscribe("probe.both", ["probe.a", "probe.b"], recorder.handler("probe.both"))
    bus.subscribe("probe.b_only", ["probe.b"], recorder.handler("probe.b_only"))
    bus.subscribe("probe.keep", ["probe.a"], keep)
    async with running(bus):
        a_ids = await emit(
            db, [("probe.a", "agg_1", 1), ("probe.a", "agg_2", 1)], merchant_id="mer_1"
        )
        b_ids = await emit(db, [("probe.b", "agg_1", 2), ("probe.other", "agg_1", 3)])
        await bus.drain(timeout=10)
        await bus.drain(timeout=10)  # nothing more happens

    def handled(consumer: str) -> set[str]:
        return {e for (c, e), n in recorder.calls.items() if c == consumer and n == 1}

    assert handled("probe.a_only") == set(a_ids)
    assert handled("probe.both") == set(a_ids) | set(b_ids[:1])
    assert handled("probe.b_only") == set(b_ids[:1])
    assert set(recorder.calls.values()) == {1}
    assert len(await effects(db)) == 6
    first = seen[0] if seen[0].event_id == a_ids[0] else seen[1]
    assert first.type == "probe.a" and first.aggregate_id == "agg_1"
    assert first.data == {"seq": 1} and first.merchant_id == "mer_1"
    assert first.occurred_at == NOW and first.position is not None


async def test_a_failed_handler_is_retried_and_its_effect_applied_once(db: Database) -> None:
    recorder, bus = Recorder(), PostgresBus(db, poll_interval=0.01)
    record = recorder.handler("probe.flaky")
    failures: Counter[str] = Counter()

    async def flaky(conn: asyncpg.Connection, event: Event) -> None:
        await record(conn, event)  # the effect is written ...
        if failures[event.event_id] < 2:
            failures[event.event_id] += 1
            raise ConnectionError("... then the handler crashes")

    bus.subscribe("probe.flaky", ["probe.happened"], flaky)
    async with running(bus):
        (event_id,) = await emit(db, [("probe.happened", "agg_1", 1)])
        await bus.drain(timeout=10)
    assert recorder.calls[("probe.flaky", event_id)] == 3
    assert [r["event_id"] for r in await effects(db)] == [event_id]  # rolled back twice
    assert await db.fetchval("SELECT count(*) FROM messaging.inbox") == 1
    assert await db.fetchval("SELECT count(*) FROM messaging.dead_letters") == 0


async def test_redelivery_is_skipped_by_the_inbox(db: Database) -> None:
    recorder, bus = Recorder(), PostgresBus(db, poll_interval=0.01)
    bus.subscribe("probe.record", ["probe.happened"], recorder.handler("probe.record"))
    async with running(bus):
        await emit(db, [("probe.happened", "agg_1", i) for i in range(5)])
        await bus.drain(timeout=10)
        # A worker died after its handlers committed but before the cursor moved on.
        await db.execute("UPDATE messaging.cursors SET position = 0")
        await bus.drain(timeout=10)
    assert sum(recorder.calls.values()) == 5
    assert len(await effects(db)) == 5


async def test_one_aggregate_in_order_many_aggregates_at_once(db: Database) -> None:
    recorder = Recorder()
    bus = PostgresBus(db, poll_interval=0.01, batch_size=64)
    bus.subscribe("probe.ordered", ["probe.step"], recorder.handler("probe.ordered", delay=0.003))
    aggregates = [f"agg_{i}" for i in range(30)]
    for seq in range(8):  # interleaved: every batch holds many aggregates
        await emit(db, [("probe.step", a, seq) for a in random.sample(aggregates, 30)])
    async with running(bus):
        await bus.drain(timeout=20)
    for aggregate in aggregates:
        assert recorder.order[("probe.ordered", aggregate)] == list(range(8)), aggregate
    assert recorder.max_active > 1  # aggregates were handled concurrently
    assert sum(recorder.calls.values()) == 240


async def test_two_workers_share_the_work_without_double_handling(scratch: Scratch) -> None:
    await scratch.db.execute(EFFECTS)
    second = await scratch.database()
    recorder = Recorder()
    consumers = [f"probe.c{i}" for i in range(4)]
    buses = []
    for worker, db in (("one", scratch.db), ("two", second)):
        bus = PostgresBus(db, poll_interval=0.01, batch_size=16)
        for name in consumers:
            bus.subscribe(name, ["probe.step"], recorder.handler(name, worker, delay=0.002))
        buses.append(bus)

    async def publisher(n: int) -> None:
        for seq in range(10):
            await emit(scratch.db, [("probe.step", f"agg_{n}", seq)])
            await asyncio.sleep(random.random() / 100)

    try:
        async with running(*buses):
            await asyncio.gather(*(publisher(n) for n in range(20)))
            await asyncio.gather(*(bus.drain(timeout=20) for bus in buses))
    finally:
        await second.close()

    rows = await effects(scratch.db)
    assert len(rows) == 4 * 200
    assert len({(r["consumer"], r["event_id"]) for r in rows}) == 4 * 200
    assert set(recorder.calls.values()) == {1}
    assert {r["worker"] for r in rows} == {"one", "two"}
    for name in consumers:
        per_aggregate: dict[str, list[int]] = defaultdict(list)
        for r in rows:
            if r["consumer"] == name:
                per_aggregate[r["aggregate_id"]].append(r["seq"])
        assert all(seqs == list(range(10)) for seqs in per_aggregate.values()), name


async def test_poison_event_is_dead_lettered_after_max_attempts(db: Database) -> None:
    recorder, bus = Recorder(), PostgresBus(db, poll_interval=0.01)
    record = recorder.handler("probe.picky")

    async def picky(conn: asyncpg.Connection, event: Event) -> None:
        if event.data["seq"] == 1:
            recorder.calls[("probe.picky", event.event_id)] += 1
            raise ValueError("cannot handle this one")
        await record(conn, event)

    bus.subscribe("probe.picky", ["probe.step"], picky, max_attempts=3)
    async with running(bus):
        ids = await emit(db, [("probe.step", "agg_1", seq) for seq in range(3)])
        await bus.drain(timeout=10)
    assert recorder.calls[("probe.picky", ids[1])] == 3
    dead = await db.fetch("SELECT * FROM messaging.dead_letters")
    assert [(d["consumer"], d["event_id"]) for d in dead] == [("probe.picky", ids[1])]
    assert "cannot handle this one" in dead[0]["error"]
    # the consumer moved on: the rest of the stream was handled
    assert [r["event_id"] for r in await effects(db)] == [ids[0], ids[2]]


async def test_drain_delivers_even_without_running_workers(db: Database) -> None:
    """`drain` (the sandbox clock calls it) must handle every consumer, also in a process whose
    bus loop never started."""
    recorder, bus = Recorder(), PostgresBus(db)
    bus.subscribe("probe.record", ["probe.happened"], recorder.handler("probe.record"))
    ids = await emit(db, [("probe.happened", "agg_1", 1)])
    await bus.drain(timeout=10)
    assert [r["event_id"] for r in await effects(db)] == ids


async def test_many_consumers_on_a_small_pool_do_not_deadlock(scratch: Scratch) -> None:
    await scratch.db.execute(EFFECTS)
    small = await scratch.database(max_size=3)
    recorder, bus = Recorder(), PostgresBus(small)
    for i in range(8):
        bus.subscribe(f"probe.c{i}", ["probe.step"], recorder.handler(f"probe.c{i}"))
    try:
        await emit(scratch.db, [("probe.step", f"agg_{i}", 0) for i in range(20)])
        await bus.drain(timeout=10)
    finally:
        await small.close()
    assert len(await effects(scratch.db)) == 8 * 20


async def test_publish_many_keeps_each_aggregates_order(db: Database) -> None:
    recorder = Recorder()
    bus = PostgresBus(db, poll_interval=0.01, batch_size=64)
    bus.subscribe("probe.many", ["probe.step"], recorder.handler("probe.many", delay=0.002))
    aggregates = [f"agg_{i}" for i in range(10)]
    async with db.transaction() as conn:
        ids = await publish_many(
            conn,
            [
                NewEvent("probe.step", a, {"seq": seq}, NOW, merchant_id="mer_x")
                for seq in range(5)
                for a in aggregates
            ],
        )
        assert await publish_many(conn, []) == []
    assert len(set(ids)) == 50
    stored = await db.fetch("SELECT event_id, merchant_id FROM messaging.events ORDER BY id")
    assert [r["event_id"] for r in stored] == ids  # in the given order
    assert {r["merchant_id"] for r in stored} == {"mer_x"}
    async with running(bus):
        await bus.drain(timeout=20)
    for aggregate in aggregates:
        assert recorder.order[("probe.many", aggregate)] == list(range(5)), aggregate


async def test_a_batch_consumer_handles_its_batch_in_one_transaction(db: Database) -> None:
    seen: list[tuple[str, int]] = []

    async def record(conn: asyncpg.Connection, event: Event) -> None:
        seen.append((event.event_id, await conn.fetchval("SELECT txid_current()")))

    bus = PostgresBus(db, poll_interval=0.01)
    bus.subscribe("probe.batched", ["probe.step"], record, batch=True)
    ids = await emit(db, [("probe.step", f"agg_{i % 3}", i) for i in range(12)])
    await emit(db, [("probe.unwanted", "agg_9", 0)])
    await bus.drain(timeout=10)
    assert [event_id for event_id, _ in seen] == ids  # in position order
    assert len({xid for _, xid in seen}) == 1  # one transaction for the batch
    assert await db.fetchval("SELECT count(*) FROM messaging.inbox") == 12
    # Its cursor reached the head, past the event it does not want.
    assert await db.fetchval(
        "SELECT c.position = s.last_position FROM messaging.cursors c, messaging.sequencer s "
        "WHERE c.consumer = 'probe.batched'"
    )
    await db.execute("UPDATE messaging.cursors SET position = 0")  # redelivered: skipped
    await bus.drain(timeout=10)
    assert len(seen) == 12


async def test_a_failing_batch_falls_back_to_one_event_at_a_time(db: Database) -> None:
    recorder = Recorder()
    record = recorder.handler("probe.picky")

    async def picky(conn: asyncpg.Connection, event: Event) -> None:
        await record(conn, event)
        if event.data["seq"] == 2:
            raise ValueError("cannot handle this one")

    bus = PostgresBus(db, poll_interval=0.01)
    bus.subscribe("probe.picky", ["probe.step"], picky, max_attempts=2, batch=True)
    ids = await emit(db, [("probe.step", "agg_1", seq) for seq in range(5)])
    await bus.drain(timeout=10)
    # The batch's effects were rolled back with it, then each event was handled on its own.
    assert [r["event_id"] for r in await effects(db)] == ids[:2] + ids[3:]
    dead = await db.fetch("SELECT consumer, event_id FROM messaging.dead_letters")
    assert [(d["consumer"], d["event_id"]) for d in dead] == [("probe.picky", ids[2])]
    assert await db.fetchval("SELECT count(*) FROM messaging.inbox") == 4


async def test_a_commit_in_another_process_wakes_the_consumers_at_once(
    scratch: Scratch,
) -> None:
    await scratch.db.execute(EFFECTS)
    api_db = await scratch.database()
    recorder = Recorder()
    worker = PostgresBus(scratch.db, poll_interval=60)  # no poll would come in this test
    worker.subscribe("probe.record", ["probe.happened"], recorder.handler("probe.record"))
    api = PostgresBus(api_db)  # runs no consumer: only tells the others
    await api.start_notifier()
    try:
        async with running(worker):
            await asyncio.sleep(0.3)  # the worker's first cycle is over: it waits
            (event_id,) = await emit(api_db, [("probe.happened", "agg_1", 1)])
            api.wake()
            async with asyncio.timeout(5):
                while not await effects(scratch.db):  # noqa: ASYNC110 (a row, not an event)
                    await asyncio.sleep(0.01)
    finally:
        await api.stop()
        await api_db.close()
    assert [r["event_id"] for r in await effects(scratch.db)] == [event_id]


async def test_a_batch_handler_gets_the_fresh_events_at_once(db: Database) -> None:
    calls: list[list[str]] = []

    async def record(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
        calls.append([e.event_id for e in events])
        if any(e.data["seq"] == 99 for e in events):
            raise ValueError("one poisonous event in the batch")

    bus = PostgresBus(db, poll_interval=0.01)
    bus.subscribe_batch("probe.sets", ["probe.step"], record, max_attempts=1)
    first = await emit(db, [("probe.step", f"agg_{i}", i) for i in range(6)])
    await bus.drain(timeout=10)
    assert calls == [first]  # one call for the batch
    calls.clear()
    second = await emit(db, [("probe.step", "agg_1", 7), ("probe.step", "agg_2", 99)])
    await bus.drain(timeout=10)
    # The batch failed, then each event was handled on its own; the poison dead-lettered.
    # (Different aggregates, so the single events may be handled in either order.)
    assert calls[0] == second and sorted(calls[1:]) == sorted([[second[0]], [second[1]]])
    dead = await db.fetch("SELECT event_id FROM messaging.dead_letters")
    assert [d["event_id"] for d in dead] == [second[1]]
