"""The facts reporting keeps from events, and the period's sums over them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import asyncpg

from bnpl.messaging import Event

RECORD_FACTS: Final = "reporting.record_facts"
CREATED, AUTHORIZED, DECLINED = "checkout.created", "checkout.authorized", "checkout.declined"
CAPTURED, REFUNDED = "checkout.captured", "checkout.refunded"
LATE, SUCCEEDED, FAILED = "installment.late", "payment.succeeded", "payment.failed"
TYPES: Final = frozenset(
    {CREATED, AUTHORIZED, DECLINED, CAPTURED, REFUNDED, LATE, SUCCEEDED, FAILED}
)
# The payments of a plan that count as collections (not down payments, not refunds).
COLLECTION_KINDS: Final = frozenset({"installment", "prepayment"})


async def record(conn: asyncpg.Connection, events: Sequence[Event]) -> None:
    """Keep what `events` add to the reports (in the consumer's transaction, once): one
    statement for the checkouts they touch, one for the money facts."""
    checkouts: dict[str, list[Any]] = {}
    amounts: list[list[Any]] = []
    for event in events:
        data, merchant = event.data, event.merchant_id
        if merchant is None:
            continue
        if event.type in (CREATED, AUTHORIZED, DECLINED):
            # One row per checkout, its events merged (an upsert may touch a row once).
            at = event.occurred_at
            row = checkouts.setdefault(
                str(data["id"]), [merchant, str(data["currency"]), at, False, False]
            )
            row[2] = min(row[2], at)
            row[3] = row[3] or event.type == AUTHORIZED
            row[4] = row[4] or event.type == DECLINED
            continue
        fact = _amount(event)
        if fact is not None:
            kind, reference, amount = fact
            currency = str(data["currency"])
            occurred = event.occurred_at.isoformat()
            amounts.append([kind, reference, merchant, currency, amount, occurred])
    if checkouts:
        await conn.execute(
            """
            INSERT INTO reporting.checkouts (id, merchant_id, currency, created_at, authorized,
                                             declined)
            SELECT r->>0, r->>1, r->>2, (r->>3)::timestamptz, (r->>4)::boolean,
                   (r->>5)::boolean
            FROM jsonb_array_elements($1::jsonb) AS r
            ON CONFLICT (id) DO UPDATE SET
                created_at = least(reporting.checkouts.created_at, EXCLUDED.created_at),
                authorized = reporting.checkouts.authorized OR EXCLUDED.authorized,
                declined = reporting.checkouts.declined OR EXCLUDED.declined
            """,
            [
                [checkout_id, merchant, currency, at.isoformat(), authorized, declined]
                for checkout_id, (merchant, currency, at, authorized, declined) in checkouts.items()
            ],
        )
    if amounts:
        await conn.execute(
            """
            INSERT INTO reporting.amounts (kind, reference, merchant_id, currency, amount, at)
            SELECT r->>0, r->>1, r->>2, r->>3, (r->>4)::bigint, (r->>5)::timestamptz
            FROM jsonb_array_elements($1::jsonb) AS r
            ON CONFLICT (kind, reference) DO NOTHING
            """,
            amounts,
        )


def _amount(event: Event) -> tuple[str, str, int] | None:
    """(kind, reference, amount) of a money fact, or None."""
    data = event.data
    if event.type == CAPTURED:
        return "capture", str(data["id"]), int(data["captured_amount"])
    if event.type == REFUNDED:
        return "refund", str(data["refund_id"]), int(data["refund_amount"])
    if event.type == LATE:
        return "late_fee", f"{data['plan_id']}:{data['seq']}", int(data["late_fee"])
    if data.get("kind") in COLLECTION_KINDS and data.get("plan_id"):
        kind = "collection_succeeded" if event.type == SUCCEEDED else "collection_failed"
        return kind, event.event_id, int(data["amount"])
    return None


@dataclass(frozen=True, slots=True)
class Flows:
    """What happened in a period, in one currency."""

    checkouts: int
    authorized: int
    declined: int
    gmv: int
    refunded: int
    late_fees: int
    collections_succeeded: int
    collections_failed: int


async def flows(
    conn: asyncpg.Connection,
    currency: str,
    start: datetime | None,
    end: datetime,
    merchant_id: str | None,
) -> Flows:
    """Checkouts created in [start, end) and how many of them were ever authorized or
    declined; the money captured, refunded and charged as late fees in it; the plan charges
    answered in it."""
    row = await conn.fetchrow(
        """
        WITH c AS (
            SELECT count(*) AS checkouts,
                   count(*) FILTER (WHERE authorized) AS authorized,
                   count(*) FILTER (WHERE declined) AS declined
            FROM reporting.checkouts
            WHERE currency = $1 AND ($2::timestamptz IS NULL OR created_at >= $2)
              AND created_at < $3 AND ($4::text IS NULL OR merchant_id = $4)
        ), a AS (
            SELECT coalesce(sum(amount) FILTER (WHERE kind = 'capture'), 0) AS gmv,
                   coalesce(sum(amount) FILTER (WHERE kind = 'refund'), 0) AS refunded,
                   coalesce(sum(amount) FILTER (WHERE kind = 'late_fee'), 0) AS late_fees,
                   count(*) FILTER (WHERE kind = 'collection_succeeded') AS succeeded,
                   count(*) FILTER (WHERE kind = 'collection_failed') AS failed
            FROM reporting.amounts
            WHERE currency = $1 AND ($2::timestamptz IS NULL OR at >= $2) AND at < $3
              AND ($4::text IS NULL OR merchant_id = $4)
        )
        SELECT * FROM c, a
        """,
        currency,
        start,
        end,
        merchant_id,
    )
    assert row is not None
    return Flows(
        checkouts=int(row["checkouts"]),
        authorized=int(row["authorized"]),
        declined=int(row["declined"]),
        gmv=int(row["gmv"]),
        refunded=int(row["refunded"]),
        late_fees=int(row["late_fees"]),
        collections_succeeded=int(row["succeeded"]),
        collections_failed=int(row["failed"]),
    )
