"""All SQL of the checkout context."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import asyncpg

from bnpl.checkout.domain import Checkout, CheckoutStatus

_COLUMNS = (
    "id, merchant_id, consumer_id, amount, currency, merchant_reference, items, consumer_email, "
    "success_url, cancel_url, status, expires_at, plan_kind, plan_id, decision_id, "
    "decision_outcome, decline_reasons, down_payment_id, authorized_at, "
    "authorization_expires_at, captured_amount, captured_at, fee_amount, refunded_amount, "
    "created_at"
)


def _checkout(row: asyncpg.Record) -> Checkout:
    values = dict(row)
    values["status"] = CheckoutStatus(values["status"])
    values["decline_reasons"] = list(row["decline_reasons"]) if row["decline_reasons"] else None
    return Checkout(**values)


async def insert(
    conn: asyncpg.Connection,
    *,
    checkout_id: str,
    merchant_id: str,
    amount: int,
    currency: str,
    merchant_reference: str | None,
    items: list[dict[str, Any]] | None,
    consumer_email: str | None,
    success_url: str | None,
    cancel_url: str | None,
    expires_at: datetime,
    at: datetime,
) -> Checkout:
    row = await conn.fetchrow(
        f"""
        INSERT INTO checkout.checkouts
            (id, merchant_id, amount, currency, merchant_reference, items, consumer_email,
             success_url, cancel_url, status, expires_at, created_at, updated_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'open', $10, $11, $11)
        RETURNING {_COLUMNS}
        """,
        checkout_id,
        merchant_id,
        amount,
        currency,
        merchant_reference,
        items,
        consumer_email,
        success_url,
        cancel_url,
        expires_at,
        at,
    )
    assert row is not None
    return _checkout(row)


async def get(conn: asyncpg.Connection, checkout_id: str, *, lock: bool = False) -> Checkout | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM checkout.checkouts WHERE id = $1"
        + (" FOR UPDATE" if lock else ""),
        checkout_id,
    )
    return _checkout(row) if row else None


async def update(
    conn: asyncpg.Connection, checkout_id: str, at: datetime, **fields: Any
) -> Checkout:
    """Set the given columns (names are code, never input) and return the new state."""
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(fields, start=3))
    values = [v.value if isinstance(v, CheckoutStatus) else v for v in fields.values()]
    row = await conn.fetchrow(
        f"UPDATE checkout.checkouts SET updated_at = $2, {assignments} WHERE id = $1 "
        f"RETURNING {_COLUMNS}",
        checkout_id,
        at,
        *values,
    )
    assert row is not None
    return _checkout(row)


async def list_for_merchant(
    conn: asyncpg.Connection,
    merchant_id: str,
    *,
    statuses: Sequence[str] | None,
    after: str | None,
    limit: int,
) -> list[Checkout]:
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM checkout.checkouts
        WHERE merchant_id = $1 AND ($2::text[] IS NULL OR status = ANY($2))
          AND ($3::text IS NULL OR id > $3)
        ORDER BY id LIMIT $4
        """,
        merchant_id,
        list(statuses) if statuses is not None else None,
        after,
        limit,
    )
    return [_checkout(r) for r in rows]


async def insert_refund(
    conn: asyncpg.Connection,
    *,
    refund_id: str,
    checkout_id: str,
    merchant_id: str,
    amount: int,
    currency: str,
    reason: str | None,
    applied_to_plan: int,
    refunded_to_consumer: int,
    payment_id: str | None,
    at: datetime,
) -> asyncpg.Record:
    row = await conn.fetchrow(
        """
        INSERT INTO checkout.refunds
            (id, checkout_id, merchant_id, amount, currency, reason, applied_to_plan,
             refunded_to_consumer, payment_id, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
        RETURNING *
        """,
        refund_id,
        checkout_id,
        merchant_id,
        amount,
        currency,
        reason,
        applied_to_plan,
        refunded_to_consumer,
        payment_id,
        at,
    )
    assert row is not None
    return row


async def list_refunds(
    conn: asyncpg.Connection, checkout_id: str, *, after: str | None, limit: int
) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT * FROM checkout.refunds WHERE checkout_id = $1 "
        "AND ($2::text IS NULL OR id > $2) ORDER BY id LIMIT $3",
        checkout_id,
        after,
        limit,
    )
    return rows


async def due_ids(
    conn: asyncpg.Connection, column: str, status: str, now: datetime, limit: int
) -> list[str]:
    """Claim up to `limit` checkouts in `status` whose `column` is due (SKIP LOCKED)."""
    rows = await conn.fetch(
        f"SELECT id FROM checkout.checkouts WHERE status = $1 AND {column} <= $2 "
        f"ORDER BY {column} LIMIT $3 FOR UPDATE SKIP LOCKED",
        status,
        now,
        limit,
    )
    return [r["id"] for r in rows]


async def next_due(conn: asyncpg.Connection, column: str, status: str) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        f"SELECT min({column}) FROM checkout.checkouts WHERE status = $1", status
    )
    return due


async def financed(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """(id, plan_id, status, amount) of every checkout that got a plan (ledger invariant)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT id, plan_id, status, amount FROM checkout.checkouts WHERE plan_id IS NOT NULL"
    )
    return rows


async def captured_after_expiry(conn: asyncpg.Connection) -> list[str]:
    """Checkouts captured after their authorization had expired (a ledger invariant)."""
    rows = await conn.fetch(
        "SELECT id FROM checkout.checkouts WHERE captured_at >= authorization_expires_at "
        "ORDER BY id LIMIT 5"
    )
    return [r["id"] for r in rows]


async def merchant_payable_expected(conn: asyncpg.Connection) -> dict[str, int]:
    """Per currency: captured - refunded - fees over all checkouts (ledger invariant)."""
    rows = await conn.fetch(
        "SELECT currency, sum(coalesce(captured_amount, 0) - refunded_amount - fee_amount) AS n "
        "FROM checkout.checkouts WHERE captured_amount IS NOT NULL GROUP BY currency"
    )
    return {r["currency"]: int(r["n"]) for r in rows}
