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
   A consumer subscribed with `batch=True` handles a whole batch in the dispatch's own
   transaction: one multi-row inbox insert, the handler for each fresh event in order, the
   cursor move, one commit. If any handler fails, the batch's savepoint is rolled back and
   its events are handled one by one (with retries and dead letters) as for other consumers;
4. a cycle dispatches only the consumers that have an event they want between their cursor
   and the head (one query, by the index on (type, position)); a consumer with nothing it
   wants in that range has its cursor moved to the head in the same query.

Waking up: a process that commits events calls `wake()`, which wakes its own loop at once
and, at most every few milliseconds, sends `NOTIFY bnpl_events`; every process running
consumers LISTENs on a connection of its own, so consumers in other processes start within
`gather_delay` (50 ms: cycles are that far apart, so that a cycle handles what many commits
made, in batches). The poll every `poll_interval` (1 s by default) only covers a lost
listener connection, so an idle platform costs about nothing.

A Kafka backend implements the same `Bus` protocol (an outbox relay publishes the sequenced
events to topics keyed by aggregate id); contexts never see which one runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import asyncpg

from bnpl.kit.db import Database
from bnpl.messaging.events import Event

log = logging.getLogger(__name__)

Handler = Callable[[asyncpg.Connection, Event], Awaitable[None]]
# Handles a batch's fresh events (in position order) at once, in the batch's transaction.
BatchHandler = Callable[[asyncpg.Connection, Sequence[Event]], Awaitable[None]]


@dataclass(frozen=True)
class Subscription:
    """A consumer: its name (`<context>.<verb>`), the event types it wants, its handler."""

    name: str
    types: frozenset[str]
    handler: Handler
    max_attempts: int = 5
    batch: bool = False
    batch_handler: BatchHandler | None = None


class Bus(Protocol):
    def subscribe(
        self,
        name: str,
        types: Iterable[str],
        handler: Handler,
        max_attempts: int = 5,
        *,
        batch: bool = False,
    ) -> None: ...

    def subscribe_batch(
        self, name: str, types: Iterable[str], handler: BatchHandler, max_attempts: int = 5
    ) -> None: ...

    async def start(self) -> None: ...

    async def start_notifier(self) -> None: ...

    async def stop(self) -> None: ...

    def wake(self) -> None: ...

    def on_wake(self, callback: Callable[[], None]) -> None: ...

    async def drain(self, timeout: float = 30.0) -> None: ...


CHANNEL = "bnpl_events"


@dataclass
class PostgresBus:
    db: Database
    poll_interval: float = 1.0
    batch_size: int = 500
    concurrency: int = 16
    notify_every: float = 0.02  # at most 50 NOTIFYs a second from a process
    gather_delay: float = 0.05  # between cycles: events handled in batches, not one by one
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    _wakeup: asyncio.Event = field(default_factory=asyncio.Event)
    _notify: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None
    _notifier: asyncio.Task[None] | None = None
    _listener: asyncpg.Connection | None = None
    _running: bool = False
    _cycle_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _wake_callbacks: list[Callable[[], None]] = field(default_factory=list)

    def subscribe(
        self,
        name: str,
        types: Iterable[str],
        handler: Handler,
        max_attempts: int = 5,
        *,
        batch: bool = False,
    ) -> None:
        """`batch=True` for a handler that only writes to the database (no provider call,
        no lock held for long): it then shares one transaction with the rest of its batch."""
        if name in self.subscriptions:
            raise ValueError(f"consumer {name!r} is already subscribed")
        self.subscriptions[name] = Subscription(
            name, frozenset(types), handler, max_attempts, batch
        )

    def subscribe_batch(
        self, name: str, types: Iterable[str], handler: BatchHandler, max_attempts: int = 5
    ) -> None:
        """A consumer whose handler takes a batch's events at once (set-based writes, one
        read for the batch); when the batch fails, it is called with one event at a time."""

        async def one(conn: asyncpg.Connection, event: Event) -> None:
            await handler(conn, [event])

        self.subscribe(name, types, one, max_attempts, batch=True)
        self.subscriptions[name] = replace(self.subscriptions[name], batch_handler=handler)

    async def _ensure_cursors(self) -> None:
        async with self.db.transaction() as conn:
            await conn.executemany(
                "INSERT INTO messaging.cursors (consumer) VALUES ($1) ON CONFLICT DO NOTHING",
                [(name,) for name in self.subscriptions],
            )

    async def start(self) -> None:
        await self._ensure_cursors()
        self._running = True
        await self._listen()
        await self.start_notifier()
        self._task = asyncio.create_task(self._loop(), name="bus")

    async def start_notifier(self) -> None:
        """Send the NOTIFYs of `wake()` (also in a process that runs no consumer: the API)."""
        if self._notifier is None:
            self._notifier = asyncio.create_task(self._notify_loop(), name="bus-notify")

    async def stop(self) -> None:
        self._running = False
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._notifier is not None:
            self._notifier.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._notifier
            self._notifier = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    def wake(self) -> None:
        """Events were committed: handle them here now, and tell the other processes."""
        self._woken()
        self._notify.set()

    def on_wake(self, callback: Callable[[], None]) -> None:
        """Call `callback` whenever something was committed, here or (through NOTIFY, in a
        process running consumers) anywhere: the scheduler and the audit sealer sleep
        until then instead of polling."""
        self._wake_callbacks.append(callback)

    def _woken(self) -> None:
        self._wakeup.set()
        for callback in self._wake_callbacks:
            callback()

    async def _notify_loop(self) -> None:
        while True:
            await self._notify.wait()
            self._notify.clear()
            try:
                await self.db.execute("SELECT pg_notify($1, '')", CHANNEL)
            except Exception:
                log.warning("bus notify failed", exc_info=True)
            await asyncio.sleep(self.notify_every)

    async def _listen(self) -> None:
        """(Re)open the connection that LISTENs for other processes' events."""
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await self.db.connect_raw()
            await self._listener.add_listener(CHANNEL, lambda *_: self._woken())
        except Exception:
            self._listener = None
            log.warning("bus listener connection failed; polling", exc_info=True)

    async def _loop(self) -> None:
        while self._running:
            await self._listen()
            try:
                busy = await self.run_once()
            except Exception:
                log.exception("bus cycle failed")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wakeup.wait(), self.poll_interval)
            # Let what is committing meanwhile join the next cycle: a cycle per commit would
            # dispatch every consumer for an event or two (nine statements each).
            await asyncio.sleep(self.gather_delay)
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

            behind = await self._behind()
            results = await asyncio.gather(*(dispatch(self.subscriptions[n]) for n in behind))
            if any(results):
                # The handlers committed too (webhook jobs, notifications): due now, perhaps.
                for callback in self._wake_callbacks:
                    callback()
            return busy or any(results)

    async def _behind(self) -> list[str]:
        """The consumers with an event they want between their cursor and the head. The
        others that are behind have their cursors moved to the head (nothing to handle)."""
        if not self.subscriptions:
            return []
        wanted = {s.name: sorted(s.types) for s in self.subscriptions.values()}
        rows = await self.db.fetch(
            """
            WITH head AS (
                SELECT last_position AS head FROM messaging.sequencer WHERE id = 1
            ), behind AS (
                SELECT c.consumer, c.position, h.head,
                       EXISTS (
                           SELECT 1
                           FROM jsonb_array_elements_text($1::jsonb -> c.consumer) AS t(type)
                           CROSS JOIN LATERAL (
                               SELECT 1 FROM messaging.events e
                               WHERE e.type = t.type AND e.position > c.position
                                 AND e.position <= h.head
                               LIMIT 1
                           ) hit
                       ) AS wanted
                FROM messaging.cursors c, head h
                WHERE c.consumer = ANY($2::text[]) AND c.position < h.head
            ), skipped AS (
                UPDATE messaging.cursors c SET position = b.head, updated_at = now()
                FROM behind b
                WHERE c.consumer = b.consumer AND NOT b.wanted AND c.position < b.head
            )
            SELECT consumer FROM behind WHERE wanted
            """,
            wanted,
            list(wanted),
        )
        return [r["consumer"] for r in rows]

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
        unsequenced = await self.db.fetchval(
            "SELECT EXISTS (SELECT 1 FROM messaging.events WHERE position IS NULL)"
        )
        return not unsequenced and not await self._behind()

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
            # One statement: the cursor locked (no row: another worker is dispatching this
            # consumer), the head (everything up to it is sequenced, so nothing is skipped by
            # moving the cursor there), and the wanted events in between (none: one row of
            # NULLs).
            found = await conn.fetch(
                """
                WITH c AS (
                    SELECT position FROM messaging.cursors WHERE consumer = $1
                    FOR UPDATE SKIP LOCKED
                ), h AS (
                    SELECT last_position AS head FROM messaging.sequencer WHERE id = 1
                )
                SELECT c.position AS cursor, h.head, e.*
                FROM c CROSS JOIN h LEFT JOIN LATERAL (
                    SELECT event_id, type, aggregate_id, data, occurred_at, merchant_id,
                           consumer_id, position
                    FROM messaging.events
                    WHERE position > c.position AND position <= h.head AND type = ANY($2)
                    ORDER BY position
                    LIMIT $3
                ) e ON true
                """,
                sub.name,
                list(sub.types),
                self.batch_size,
            )
            if not found:
                return False  # another worker is dispatching this consumer
            position, head = found[0]["cursor"], found[0]["head"]
            rows = [r for r in found if r["event_id"] is not None]
            # A full batch ends at its last event; a short one has read everything to the head.
            new_position = rows[-1]["position"] if len(rows) == self.batch_size else head
            if rows:
                events = [Event.from_row(r) for r in rows]
                if sub.batch:
                    await self._handle_together(conn, sub, events)
                else:
                    await self._handle_batch(sub, events)
            if new_position > position:
                await conn.execute(
                    "UPDATE messaging.cursors SET position = $2, updated_at = now() "
                    "WHERE consumer = $1",
                    sub.name,
                    new_position,
                )
            return bool(rows)

    async def _record_and_handle(
        self, conn: asyncpg.Connection, sub: Subscription, events: list[Event]
    ) -> None:
        """In `conn`'s transaction: the batch's events into the consumer's inbox, then those
        it had not seen yet to its handler(s)."""
        fresh = {
            r["event_id"]
            for r in await conn.fetch(
                "INSERT INTO messaging.inbox (consumer, event_id) "
                "SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING RETURNING event_id",
                sub.name,
                [e.event_id for e in events],
            )
        }
        todo = [e for e in events if e.event_id in fresh]
        if sub.batch_handler is not None:
            await sub.batch_handler(conn, todo)
        else:
            for event in todo:
                await sub.handler(conn, event)

    async def _handle_together(
        self, conn: asyncpg.Connection, sub: Subscription, events: list[Event]
    ) -> None:
        """The whole batch in the dispatch's transaction (under a savepoint); if a handler
        fails, the savepoint is rolled back and the events are handled one by one."""
        try:
            async with conn.transaction():
                await self._record_and_handle(conn, sub, events)
        except Exception:
            log.warning(
                "batch failed, handling its events one by one",
                exc_info=True,
                extra={"consumer": sub.name, "events": len(events)},
            )
            await self._handle_batch(sub, events)

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
