"""Time-driven work: the scheduler runs due items in due-time order while the clock reads their
due time, hands out each item once across workers, and the clock only moves forward."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import asyncpg
import pytest

from bnpl.kit.clock import Clock, ClockError
from bnpl.kit.db import Database
from bnpl.messaging import Event, PostgresBus
from bnpl.scheduler import Scheduler
from tests.integration.foundation.conftest import Scratch
from tests.integration.foundation.due import DDL, DueItems, add_item, runs

CLOSE = timedelta(seconds=5)  # real time that passes while a test runs


async def platform(db: Database, worker: str = "w") -> tuple[Clock, PostgresBus, Scheduler]:
    clock = Clock()
    async with db.connection() as conn:
        await clock.refresh(conn)
    bus = PostgresBus(db, poll_interval=0.01)
    scheduler = Scheduler(db, clock, bus, interval=0.05, batch_size=7)
    scheduler.register(DueItems(clock, worker))
    return clock, bus, scheduler


@pytest.fixture
async def db(scratch: Scratch) -> Database:
    await scratch.db.execute(DDL)
    return scratch.db


async def test_advance_runs_due_work_in_due_order_at_its_due_time(db: Database) -> None:
    clock, bus, scheduler = await platform(db)
    handled: list[tuple[str, datetime]] = []

    async def on_item_ran(conn: asyncpg.Connection, event: Event) -> None:
        handled.append((event.data["name"], clock.now()))

    bus.subscribe("probe.watch", ["probe.item_ran"], on_item_ran)
    start = clock.now()
    await add_item(db, "five", start + timedelta(hours=5))
    await add_item(db, "one", start + timedelta(hours=1))
    await add_item(db, "two", start + timedelta(hours=2), follow_up=timedelta(hours=4))
    await add_item(db, "late", start + timedelta(hours=30))

    target = start + timedelta(days=1)
    now = await scheduler.advance_to(target)

    assert target <= now < target + CLOSE
    assert target <= clock.now() < target + CLOSE
    ran = await runs(db)
    assert [r["name"] for r in ran] == ["one", "two", "five", "two+"]  # "late" is not due
    for r in ran:
        # the clock stood at the item's due time while it ran
        assert r["due_at"] <= r["clock_now"] < r["due_at"] + CLOSE, r
        assert r["due_at"] <= r["handed_now"] < r["due_at"] + CLOSE, r
    # the events each run emitted were handled before time moved on
    assert [name for name, _ in handled] == ["one", "two", "five", "two+"]
    for (_, seen_at), r in zip(handled, ran, strict=True):
        assert r["due_at"] <= seen_at < r["due_at"] + CLOSE

    # the new time is the platform's, not this process's: another process reads it
    other = Clock()
    async with db.connection() as conn:
        await other.refresh(conn)
    assert abs(other.now() - clock.now()) < CLOSE


async def test_advancing_day_by_day_runs_everything_in_due_order(db: Database) -> None:
    clock, _, scheduler = await platform(db)
    start = clock.now()
    for hours in (7, 3, 20, 7, 49):
        await add_item(db, f"h{hours}", start + timedelta(hours=hours), timedelta(hours=5))
    for day in (1, 2):
        await scheduler.advance_to(start + timedelta(days=day))
    ran = await runs(db)
    # follow-ups (+5 h) fall between the originals, and one crosses into day two
    assert [r["name"] for r in ran] == ["h3", "h7", "h7", "h3+", "h7+", "h7+", "h20", "h20+"]
    assert [r["due_at"] for r in ran] == sorted(r["due_at"] for r in ran)
    left = await db.fetch("SELECT name FROM public.due_items WHERE done_at IS NULL")
    assert [r["name"] for r in left] == ["h49"]


async def test_several_workers_never_run_an_item_twice(scratch: Scratch) -> None:
    await scratch.db.execute(DDL)
    dbs = [scratch.db, await scratch.database(), await scratch.database()]
    try:
        schedulers = [(await platform(db, f"w{i}"))[2] for i, db in enumerate(dbs)]
        now = schedulers[0].clock.now()
        await scratch.db.execute(
            "INSERT INTO public.due_items (name, due_at) "
            "SELECT 'i' || g, $1::timestamptz - g * interval '1 second' "
            "FROM generate_series(1, 300) g",
            now,
        )
        done = await asyncio.gather(*(s.run_due(now) for s in schedulers * 2))
    finally:
        for db in dbs[1:]:
            await db.close()
    assert sum(done) == 300
    ran = await runs(scratch.db)
    assert len(ran) == 300
    assert len({r["item_id"] for r in ran}) == 300


async def test_concurrent_advances_run_each_item_once(scratch: Scratch) -> None:
    """Two processes move the sandbox clock at the same moment (two API pods, say)."""
    await scratch.db.execute(DDL)
    second = await scratch.database()
    try:
        (clock, _, one), (_, _, two) = (
            await platform(scratch.db, "one"),
            await platform(second, "two"),
        )
        start = clock.now()
        for minutes in range(0, 24 * 60, 45):
            await add_item(scratch.db, f"m{minutes}", start + timedelta(minutes=minutes + 1))
        targets = (start + timedelta(days=1), start + timedelta(hours=20))
        await asyncio.gather(one.advance_to(targets[0]), two.advance_to(targets[1]))
    finally:
        await second.close()
    ran = await runs(scratch.db)
    assert len(ran) == len({r["item_id"] for r in ran}) == 32
    assert clock.now() >= targets[0]


async def test_the_scheduler_loop_runs_work_that_falls_due(db: Database) -> None:
    clock, _, scheduler = await platform(db)
    await add_item(db, "now", clock.now() - timedelta(seconds=1))
    await add_item(db, "later", clock.now() + timedelta(hours=1))
    await scheduler.start()
    try:
        for _ in range(100):
            if await runs(db):
                break
            await asyncio.sleep(0.02)
    finally:
        await scheduler.stop()
    assert [r["name"] for r in await runs(db)] == ["now"]


class Stuck:
    """Due work whose run does not end until released (a webhook run on slow receivers)."""

    name = "probe.stuck"

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.runs = 0

    async def next_due_at(self, db: Database) -> datetime | None:
        return None

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        self.runs += 1
        await self.release.wait()
        return 0


class Counting:
    """Due work that never finds anything, counting its runs."""

    name = "probe.counting"

    def __init__(self) -> None:
        self.runs = 0

    async def next_due_at(self, db: Database) -> datetime | None:
        return None

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        self.runs += 1
        return 0


class Failing(Counting):
    """Due work whose every run fails."""

    name = "probe.failing"

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        await super().run_due(db, now, limit)
        raise RuntimeError("this work always fails")


async def eventually(check: Callable[[], Awaitable[bool]], within: float = 5.0) -> bool:
    for _ in range(int(within / 0.02)):
        if await check():
            return True
        await asyncio.sleep(0.02)
    return False


async def test_the_loop_runs_each_work_on_its_own(db: Database) -> None:
    """A work stuck in a run (or failing) delays neither the others nor the clock refresh."""
    clock = Clock()
    async with db.connection() as conn:
        await clock.refresh(conn)
    scheduler = Scheduler(db, clock, PostgresBus(db), interval=0.05, batch_size=7)
    stuck, failing = Stuck(), Failing()
    scheduler.register(stuck)  # first: a loop that runs the works in turn is held up here
    scheduler.register(failing)
    scheduler.register(DueItems(clock))
    await scheduler.start()
    try:
        await add_item(db, "first", clock.now() - timedelta(seconds=1))

        async def ran(count: int) -> bool:
            return len(await runs(db)) == count

        assert await eventually(lambda: ran(1)), "a stuck work held up the others"
        await add_item(db, "second", clock.now() - timedelta(seconds=1))
        assert await eventually(lambda: ran(2))
        assert stuck.runs == 1  # still in its first run
        assert failing.runs >= 2  # its failures are logged and it runs again

        # Another process moves the clock: this one follows within an interval or so.
        other = Clock()
        async with db.connection() as conn:
            moved = await other.move_to(conn, other.now() + timedelta(days=2))

        async def followed() -> bool:
            return clock.now() >= moved

        assert await eventually(followed), "the clock was not refreshed"
        stuck.release.set()

        async def ran_again() -> bool:
            return stuck.runs >= 2

        assert await eventually(ran_again)  # released, it goes on looping on its own
    finally:
        await scheduler.stop()
    assert [r["name"] for r in await runs(db)] == ["first", "second"]


async def test_the_clock_only_moves_forward_and_is_shared(db: Database) -> None:
    mine, theirs = Clock(), Clock()
    async with db.connection() as conn:
        await mine.refresh(conn)
        start = mine.now()
        with pytest.raises(ClockError):
            await mine.move_to(conn, start - timedelta(minutes=1))
        with pytest.raises(ClockError):
            await mine.move_to(conn, (start + timedelta(hours=1)).replace(tzinfo=None))
        moved = await mine.move_to(conn, start + timedelta(days=3))
        assert start + timedelta(days=3) <= moved < start + timedelta(days=3) + CLOSE
        # another process, still on the old time, cannot pull it back
        assert theirs.now() < moved
        with pytest.raises(ClockError):
            await theirs.move_to(conn, start + timedelta(days=1))
        assert theirs.now() >= moved  # it refreshed on the way
        offset_us = await conn.fetchval("SELECT offset_us FROM platform.clock")
    assert abs(timedelta(microseconds=offset_us) - mine.offset) < timedelta(milliseconds=1)
    assert mine.today() == mine.now().date()


async def test_an_idle_work_pauses_longer_until_it_is_nudged(db: Database) -> None:
    clock = Clock()
    scheduler = Scheduler(db, clock, PostgresBus(db), interval=0.05, idle_interval=0.8)
    idle = Counting()
    scheduler.register(idle)
    await scheduler.start()
    try:
        await asyncio.sleep(2.0)
        # Polled every interval it would have run 40 times; backing off to 0.8 s, a handful.
        assert 3 <= idle.runs <= 8, idle.runs
        before = idle.runs
        scheduler.nudge()  # something was committed: it looks again at once
        assert await eventually(lambda: _ran_since(idle, before), within=0.3)
    finally:
        await scheduler.stop()


async def _ran_since(work: Counting, runs: int) -> bool:
    return work.runs > runs
