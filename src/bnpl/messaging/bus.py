"""The event bus: subscriptions, and the PostgreSQL backend that runs consumers in-process.

The PostgreSQL backend reads the outbox table itself:

1. the *sequencer* gives committed, unsequenced events a `position` in id order. An event
   becomes visible to it only once its transaction commits, and two transactions that touch
   one aggregate are serialized by that aggregate's row lock, so the events of one aggregate
   get positions in the order they happened;
2. each consumer keeps a cursor over positions. A worker dispatches a consumer's batch while
   holding its cursor's row lock (`FOR UPDATE SKIP LOCKED`), so several workers share the
   consumers safely. Within a batch, events of different aggregates are handled concurrently
   and events of one aggregate in order;
3. every handler runs in a transaction that first records the event in the consumer's inbox;
   an event already in the inbox is skipped, so redelivery after a crash changes nothing.

A Kafka backend implements the same `Bus` protocol (an outbox relay publishes the sequenced
events to topics keyed by aggregate id); contexts never see which one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from bnpl.kit.db import Database
from bnpl.messaging.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A consumer: its name (`<context>.<verb>`), the event types it wants, its handler."""

    name: str
    types: frozenset[str]
    handler: Handler
    max_attempts: int = 5


class Bus(Protocol):
    def subscribe(self, name: str, types: Iterable[str], handler: Handler) -> None: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None: ...

    async def drain(self, timeout: float = 30.0) -> None: ...


@dataclass
class PostgresBus:
    db: Database
    poll_interval: float = 0.05
    batch_size: int = 500
    concurrency: int = 16
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _running: bool = False
    _cycle_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def subscribe(
        self, name: str, types: Iterable[str], handler: Handler, max_attempts: int = 5
    ) -> None:
        if name in self.subscriptions:
            raise ValueError(f"consumer {name!r} is already subscribed")
        self.subscriptions[name] = Subscription(name, frozenset(types), handler, max_attempts)

    async def _ensure_cursors(self) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO messaging.cursors (consumer) VALUES ($1) ON CONFLICT DO NOTHING",
                [(name,) for name in self.subscriptions],
            )

    async def start(self) -> None:
        await self._ensure_cursors()
        self._running = True
        self._task = asyncio.create_task(self._loop(), name="bus")

    async def stop(self) -> None:
        self._running = False
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    def wake(self) -> None:
        self._wakeup.set()

    async def _loop(self) -> None:
        while self._running:
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("bus cycle failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
                self._wakeup.clear()

    async def run_once(self) -> bool:
        """One cycle: sequence new events, then dispatch every consumer; True if work was done."""
        async with self._cycle_lock:
            busy = await self._sequence() > 0
            # A dispatch holds a connection (its cursor's row lock) while its handlers take
            # others from the same pool: with one dispatch per consumer at once, enough
            # consumers would hold every connection and wait forever for their handlers'.
            gate = asyncio.Semaphore(max(1, self.db.max_size // 2))

            async def dispatch(sub: Subscription) -> bool:
                async with gate:
                    return await self._dispatch(sub)

            results = await asyncio.gather(*(dispatch(s) for s in self.subscriptions.values()))
            return busy or any(results)

    async def drain(self, timeout: float = 30.0) -> None:
        """Return once every committed event has been handled by every consumer."""
        # Also in a process whose loop never started (a consumer without a cursor would be
        # skipped by `_dispatch` and ignored by `_caught_up`).
        await self._ensure_cursors()
        async with asyncio.timeout(timeout):
            while True:
                await self.run_once()
                if await self._caught_up():
                    return
                await asyncio.sleep(0.01)

    async def _caught_up(self) -> bool:
        row = await self.db.fetchrow(
            """
            SELECT
              (SELECT last_position FROM messaging.sequencer WHERE id = 1) AS head,
              EXISTS (SELECT 1 FROM messaging.events WHERE position IS NULL) AS unsequenced,
              (SELECT min(position) FROM messaging.cursors WHERE consumer = ANY($1)) AS slowest
            """,
            list(self.subscriptions),
        )
        assert row is not None
        if row["unsequenced"]:
            return False
        return row["slowest"] is None or row["slowest"] >= row["head"]

    async def _sequence(self) -> int:
        async with self.db.transaction() as conn:
            last = await conn.fetchval(
                "SELECT last_position FROM messaging.sequencer WHERE id = 1 FOR UPDATE SKIP LOCKED"
            )
            if last is None:
                return 0  # another process is sequencing right now
            # A separate statement, so its snapshot is taken after the lock is held.
            head = await conn.fetchval(
                """
                WITH pending AS (
                    SELECT id, row_number() OVER (ORDER BY id) AS rn
                    FROM messaging.events WHERE position IS NULL ORDER BY id LIMIT $2
                ), placed AS (
                    UPDATE messaging.events e SET position = $1 + p.rn
                    FROM pending p WHERE e.id = p.id
                    RETURNING e.position
                )
                SELECT max(position) FROM placed
                """,
                last,
                self.batch_size * 4,
            )
            if head is None:
                return 0
            await conn.execute(
                "UPDATE messaging.sequencer SET last_position = $1 WHERE id = 1", head
            )
            return int(head - last)

    async def _dispatch(self, sub: Subscription) -> bool:
        async with self.db.transaction() as conn:
            position = await conn.fetchval(
                "SELECT position FROM messaging.cursors WHERE consumer = $1 FOR UPDATE SKIP LOCKED",
                sub.name,
            )
            if position is None:
                return False  # another worker is dispatching this consumer
            # Read the head first: everything up to it is sequenced, so nothing can be
            # skipped by moving the cursor there.
            head = await conn.fetchval("SELECT last_position FROM messaging.sequencer WHERE id = 1")
            new_position = min(head, position + self.batch_size)
            rows = await conn.fetch(
                """
                SELECT event_id, type, aggregate_id, data, occurred_at, merchant_id,
                       consumer_id, position
                FROM messaging.events
                WHERE position > $1 AND position <= $3 AND type = ANY($2)
                ORDER BY position
                """,
                position,
                list(sub.types),
                new_position,
            )
            if rows:
                await self._handle_batch(sub, [Event.from_row(r) for r in rows])
            if new_position > position:
                await conn.execute(
                    "UPDATE messaging.cursors SET position = $2, updated_at = now() "
                    "WHERE consumer = $1",
                    sub.name,
                    new_position,
                )
            return bool(rows)

    async def _handle_batch(self, sub: Subscription, events: list[Event]) -> None:
        by_aggregate: dict[str, list[Event]] = defaultdict(list)
        for event in events:
            by_aggregate[event.aggregate_id].append(event)
        gate = asyncio.Semaphore(self.concurrency)

        async def run_in_order(chain: list[Event]) -> None:
            async with gate:
                for event in chain:
                    await self._handle(sub, event)

        await asyncio.gather(*(run_in_order(chain) for chain in by_aggregate.values()))

    async def _handle(self, sub: Subscription, event: Event) -> None:
        for attempt in range(1, sub.max_attempts + 1):
            try:
                async with self.db.transaction() as conn:
                    fresh = await conn.fetchval(
                        "INSERT INTO messaging.inbox (consumer, event_id) VALUES ($1, $2) "
                        "ON CONFLICT DO NOTHING RETURNING true",
                        sub.name,
                        event.event_id,
                    )
                    if fresh:
                        await sub.handler(conn, event)
                return
            except Exception as exc:
                if attempt == sub.max_attempts:
                    log.exception(
                        "consumer gave up on event",
                        extra={"consumer": sub.name, "event_id": event.event_id},
                    )
                    await self.db.execute(
                        "INSERT INTO messaging.dead_letters (consumer, event_id, error) "
                        "VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                        sub.name,
                        event.event_id,
                        repr(exc)[:2000],
                    )
                    return
                log.warning(
                    "consumer failed, retrying",
                    extra={"consumer": sub.name, "event_id": event.event_id, "attempt": attempt},
                )
                await asyncio.sleep(min(0.05 * 2**attempt, 2.0))
