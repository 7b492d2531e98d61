"""The scheduler loop and the sandbox's "advance the clock" procedure.

In the background, each registered work runs in a task of its own (run its due items until
less than a batch is left, sleep `interval`, again), so a work that is slow for a while (a
webhook run waiting on slow receivers) delays no other; one loop refreshes the platform clock
every `interval`. `advance_to` and `run_due` run every work in turn, to completion.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bnpl.kit.clock import Clock, ClockError
from bnpl.kit.db import Database
from bnpl.messaging import Bus

log = logging.getLogger(__name__)


class DueWork(Protocol):
    """One kind of time-driven work, named `<context>.<verb>`."""

    name: str

    async def next_due_at(self, db: Database) -> datetime | None:
        """The earliest due time of any pending item, claimed or not (None: nothing pending)."""
        ...

    async def run_due(self, db: Database, now: datetime, limit: int) -> int:
        """Claim up to `limit` items due at `now`, do them, and return how many were done."""
        ...


@dataclass
class Scheduler:
    db: Database
    clock: Clock
    bus: Bus
    interval: float = 1.0
    idle_interval: float = 8.0  # the longest pause of a work that found nothing to do
    batch_size: int = 500
    works: list[DueWork] = field(default_factory=list)
    _task: asyncio.Task[None] | None = None
    _running: bool = False
    _advance_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _work_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    _running_work: dict[str, asyncio.Lock] = field(default_factory=dict)
    _nudged: dict[str, asyncio.Event] = field(default_factory=dict)

    def register(self, work: DueWork) -> None:
        if any(w.name == work.name for w in self.works):
            raise ValueError(f"due work {work.name!r} is already registered")
        self.works.append(work)
        self._running_work[work.name] = asyncio.Lock()
        self._nudged[work.name] = asyncio.Event()

    def nudge(self) -> None:
        """Something was committed: works pausing for lack of anything to do look again
        (no sooner than `interval` after their last run)."""
        for nudged in self._nudged.values():
            nudged.set()

    async def start(self) -> None:
        self._running = True
        self._task = asyncio.create_task(self._loop(), name="scheduler")

    async def stop(self) -> None:
        self._running = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        """Refresh the clock every interval; start a task for each work (also for one
        registered after `start`) once the clock has been read."""
        try:
            while self._running:
                try:
                    async with self.db.connection() as conn:
                        await self.clock.refresh(conn)
                except Exception:
                    log.exception("scheduler clock refresh failed")
                for work in self.works:
                    if work.name not in self._work_tasks:
                        self._work_tasks[work.name] = asyncio.create_task(
                            self._work_loop(work), name=f"scheduler:{work.name}"
                        )
                await asyncio.sleep(self.interval)
        finally:
            tasks = list(self._work_tasks.values())
            self._work_tasks.clear()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _work_loop(self, work: DueWork) -> None:
        """One work, on its own: what is due, until less than a batch is left; then a pause
        of `interval`. A run that found nothing doubles the pause (up to `idle_interval`),
        cut short by `nudge()`: an idle platform does not poll every work every second.
        While the sandbox clock is being advanced, `advance_to` runs the works instead."""
        pause = self.interval
        nudged = self._nudged[work.name]
        while self._running:
            nudged.clear()
            found = 0
            try:
                async with self._running_work[work.name]:
                    while not self._advance_lock.locked():
                        done = await work.run_due(self.db, self.clock.now(), self.batch_size)
                        found += done
                        if done:
                            self.bus.wake()  # the work's events are handled now
                        if done < self.batch_size:
                            break
            except Exception:
                log.exception("scheduled work failed", extra={"work": work.name})
                found = -1  # not idle: tried again after `interval`
            pause = self.interval if found else min(pause * 2, self.idle_interval)
            await asyncio.sleep(self.interval)
            if pause > self.interval:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(nudged.wait(), pause - self.interval)

    async def run_due(self, now: datetime) -> int:
        """Run every work item due at `now` until none is left that this process can claim.
        A work's background run in this process is waited for first, so that what it had
        claimed (at the time before an advance) is finished, not skipped as someone else's."""
        total = 0
        for work in self.works:
            async with self._running_work[work.name]:
                while True:
                    done = await work.run_due(self.db, now, self.batch_size)
                    total += done
                    if done < self.batch_size:
                        break
        return total

    async def _earliest_due(self) -> datetime | None:
        dues = [await w.next_due_at(self.db) for w in self.works]
        pending = [d for d in dues if d is not None]
        return min(pending) if pending else None

    async def advance_to(self, target: datetime, timeout: float = 280.0) -> datetime:
        """Move business time to `target`, running everything that falls due on the way.

        Work runs in due-time order: the clock stops at each due time in turn, the work due
        then runs to completion and the events it emitted are handled, before time moves on.
        So one jump of 60 days ends in the same state as 60 jumps of one day.
        """
        async with self._advance_lock, asyncio.timeout(timeout):
            while True:
                await self.bus.drain()
                due = await self._earliest_due()
                if due is None or due > target:
                    break
                if due > self.clock.now():
                    await self._move_at_least_to(due)
                if await self.run_due(self.clock.now()) == 0:
                    # Due items exist but are claimed by another worker: wait for it.
                    await asyncio.sleep(0.02)
            if target > self.clock.now():
                await self._move_at_least_to(target)
            await self.bus.drain()
            return self.clock.now()

    async def _move_at_least_to(self, target: datetime) -> None:
        """Move business time to `target`, unless another process has moved it further."""
        async with self.db.connection() as conn:
            try:
                await self.clock.move_to(conn, target)
            except ClockError:
                # Another process's advance got past `target` first (this process's clock was
                # stale); the time is already where it must be, so carry on from there.
                await self.clock.refresh(conn)
