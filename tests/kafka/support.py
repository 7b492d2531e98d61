"""Helpers of the Kafka tests: handlers that record their effect, events, topics read raw."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from confluent_kafka import Consumer, Message

from bnpl.kit.db import Database
from bnpl.messaging import Event, NewEvent, PostgresBus, publish_many

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def recorder(consumer: str, worker: str = "w", fail_on: set[str] | None = None):  # type: ignore[no-untyped-def]
    """A handler writing its effect in the handler's transaction (so it counts only when the
    inbox row commits); it raises for the aggregates in `fail_on` (a poison event; a set
    the test may empty to mend it)."""

    async def handle(conn: asyncpg.Connection, event: Event) -> None:
        if fail_on and event.aggregate_id in fail_on:
            raise ValueError(f"poison: {event.event_id}")
        await conn.execute(
            "INSERT INTO public.effects (consumer, worker, event_id, aggregate_id, seq) "
            "VALUES ($1, $2, $3, $4, $5)",
            consumer,
            worker,
            event.event_id,
            event.aggregate_id,
            event.data.get("seq"),
        )

    return handle


async def emit(db: Database, events: Iterable[tuple[str, str, int]]) -> list[str]:
    """Publish (type, aggregate, seq) events in one committed transaction."""
    async with db.transaction() as conn:
        return await publish_many(
            conn, [NewEvent(t, agg, {"seq": seq}, NOW) for t, agg, seq in events]
        )


async def effects(db: Database, consumer: str | None = None) -> list[asyncpg.Record]:
    return await db.fetch(
        "SELECT * FROM public.effects WHERE $1::text IS NULL OR consumer = $1 ORDER BY n",
        consumer,
    )


async def exactly_once(db: Database, consumer: str, event_ids: Iterable[str]) -> None:
    """Every one of `event_ids` had its effect once for `consumer`, and nothing else did."""
    counts = Counter(r["event_id"] for r in await effects(db, consumer))
    wanted = set(event_ids)
    assert set(counts) == wanted, (len(set(counts) - wanted), len(wanted - set(counts)))
    assert max(counts.values()) == 1, counts.most_common(3)


async def wait_for(check, timeout: float = 30.0, every: float = 0.1) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        if await check():
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"not true after {timeout} s: {check}")
        await asyncio.sleep(every)


@asynccontextmanager
async def running(*buses: PostgresBus) -> AsyncIterator[None]:
    for bus in buses:
        await bus.start()
    try:
        yield
    finally:
        for bus in buses:
            await bus.stop()


def read_topic(bootstrap: str, topic: str, expected: int, timeout: float = 20.0) -> list[Message]:
    """Every message of `topic` from the start (at least `expected` of them), read raw."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{time.monotonic_ns()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    found: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(1000, 0.5)
            found.extend(m for m in batch if m.error() is None)
            if len(found) >= expected and not batch:
                break
    finally:
        consumer.close()
    return found
