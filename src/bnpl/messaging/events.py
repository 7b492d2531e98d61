"""Events as plain typed data, and the outbox write that publishes them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

import asyncpg

from bnpl.kit.ids import new_id

# The public event types (API.md, "Events", and a few more); everything else on the bus is
# an internal message between contexts and is never shown.
PUBLIC_TYPES: Final = frozenset(
    {
        "merchant.activated",
        "merchant.rejected",
        "merchant.suspended",
        "merchant.reactivated",
        "consumer.kyc_verified",
        "consumer.kyc_rejected",
        "checkout.created",
        "checkout.authorized",
        "checkout.declined",
        "checkout.captured",
        "checkout.voided",
        "checkout.expired",
        "checkout.refunded",
        "plan.created",
        "plan.delinquent",
        "plan.reactivated",
        "plan.paid_off",
        "plan.refunded",
        "plan.canceled",
        "plan.charged_off",
        "installment.paid",
        "installment.late",
        "payment.succeeded",
        "payment.failed",
        "settlement.created",
        "settlement.paid",
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    event_id: str
    type: str
    aggregate_id: str
    data: Mapping[str, Any]
    occurred_at: datetime
    merchant_id: str | None = None
    consumer_id: str | None = None
    position: int | None = None

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Event:
        return cls(
            event_id=row["event_id"],
            type=row["type"],
            aggregate_id=row["aggregate_id"],
            data=row["data"],
            occurred_at=row["occurred_at"],
            merchant_id=row["merchant_id"],
            consumer_id=row["consumer_id"],
            position=row["position"],
        )


async def publish(
    conn: asyncpg.Connection,
    type: str,
    aggregate_id: str,
    data: Mapping[str, Any],
    *,
    occurred_at: datetime,
    merchant_id: str | None = None,
    consumer_id: str | None = None,
) -> str:
    """Write an event to the outbox in the caller's transaction; returns its id.

    It is delivered to subscribers only if that transaction commits.
    """
    [event_id] = await publish_many(
        conn,
        [NewEvent(type, aggregate_id, data, occurred_at, merchant_id, consumer_id)],
    )
    return event_id


@dataclass(frozen=True, slots=True)
class NewEvent:
    """An event about to be written to the outbox (`publish_many`)."""

    type: str
    aggregate_id: str
    data: Mapping[str, Any]
    occurred_at: datetime
    merchant_id: str | None = None
    consumer_id: str | None = None


@dataclass(slots=True)
class _Outbox:
    """The events of one transaction, held back to be written in one statement at its end."""

    conn: asyncpg.Connection
    rows: list[tuple[Any, ...]] = field(default_factory=list)


_held: ContextVar[_Outbox | None] = ContextVar("bnpl_outbox", default=None)


@asynccontextmanager
async def outbox_at_end(conn: asyncpg.Connection) -> AsyncIterator[None]:
    """Within the block, events published on `conn` are written when the block ends
    normally, all in one statement, still inside the caller's transaction (which must not
    commit before): a request that emits four events makes one round trip, not four. Events
    published on any other connection are written at once, as always. An exception
    leaves the held events unwritten, like the transaction they belonged to. The block
    must not roll back to a savepoint after publishing: the events would survive it."""
    outbox = _Outbox(conn)
    token = _held.set(outbox)
    try:
        yield
    finally:
        _held.reset(token)
    await _write(conn, outbox.rows)


async def publish_many(conn: asyncpg.Connection, events: Sequence[NewEvent]) -> list[str]:
    """Write several events to the outbox in one statement, in this order; their ids.

    The rows get ascending ids in the given order, so one aggregate's events keep their
    order; like `publish`, they are delivered only if the caller's transaction commits.
    Inside `outbox_at_end(conn)` they are written with the block's other events, at its end.
    """
    if not events:
        return []
    ids = [new_id("evt") for _ in events]
    rows = [
        (i, e.type, e.aggregate_id, dict(e.data), e.occurred_at, e.merchant_id, e.consumer_id)
        for i, e in zip(ids, events, strict=True)
    ]
    held = _held.get()
    if held is not None and held.conn is conn:
        held.rows.extend(rows)
    else:
        await _write(conn, rows)
    return ids


async def _write(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    await conn.execute(
        """
        INSERT INTO messaging.events
            (event_id, type, aggregate_id, data, occurred_at, merchant_id, consumer_id)
        SELECT e->>0, e->>1, e->>2, e->3, (e->>4)::timestamptz, e->>5, e->>6
        FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS r (e, n)
        ORDER BY r.n
        """,
        rows,  # rows as jsonb (kit.db)
    )


async def public_event(conn: asyncpg.Connection, event_id: str) -> Event | None:
    """A public event by its id (None: no such event, or an internal one)."""
    row = await conn.fetchrow(
        "SELECT event_id, type, aggregate_id, data, occurred_at, merchant_id, consumer_id, "
        "position FROM messaging.events WHERE event_id = $1",
        event_id,
    )
    if row is None or row["type"] not in PUBLIC_TYPES:
        return None
    return Event.from_row(row)


async def dead_letters(conn: asyncpg.Connection, consumer: str) -> int:
    """How many events `consumer` gave up on (each waits in `messaging.dead_letters`)."""
    count: int = await conn.fetchval(
        "SELECT count(*) FROM messaging.dead_letters WHERE consumer = $1", consumer
    )
    return count
