"""All SQL of the installments context (schema `installments`).

Every function takes the caller's connection; none opens a transaction. Joins between the
two tables always match `consumer_id` too, so they stay shard-local when the tables are
distributed by consumer (ARCHITECTURE.md, "Scale").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import asyncpg

from bnpl.installments.domain import (
    Installment,
    InstallmentStatus,
    PlanKind,
    PlanStatus,
    ScheduledInstallment,
)

_PLAN_COLUMNS = """
    p.id, p.consumer_id, p.merchant_id, p.checkout_id, p.kind, p.currency, p.principal,
    p.original_principal, p.refunded_amount, p.apr_bps, p.status, p.payment_method_id,
    p.late_fees_total, p.authorization_date, p.created_at, p.version
"""
# Prefixed, so they can sit next to the plan's columns in one joined row.
_INSTALLMENT_COLUMNS = """
    i.seq AS i_seq, i.due_date AS i_due_date, i.principal AS i_principal,
    i.interest AS i_interest, i.fees AS i_fees, i.principal_paid AS i_principal_paid,
    i.interest_paid AS i_interest_paid, i.fees_paid AS i_fees_paid, i.status AS i_status
"""


@dataclass(frozen=True, slots=True)
class PlanRecord:
    """A stored plan with its installments as domain state."""

    id: str
    consumer_id: str
    merchant_id: str
    checkout_id: str
    kind: PlanKind
    currency: str
    principal: int
    original_principal: int
    refunded_amount: int
    apr_bps: int
    status: PlanStatus
    payment_method_id: str
    late_fees_total: int
    authorization_date: date
    created_at: datetime
    version: int
    installments: tuple[Installment, ...]


def _installment(row: asyncpg.Record, prefix: str = "") -> Installment:
    return Installment(
        seq=row[f"{prefix}seq"],
        due_date=row[f"{prefix}due_date"],
        principal=row[f"{prefix}principal"],
        interest=row[f"{prefix}interest"],
        fees=row[f"{prefix}fees"],
        principal_paid=row[f"{prefix}principal_paid"],
        interest_paid=row[f"{prefix}interest_paid"],
        fees_paid=row[f"{prefix}fees_paid"],
        status=InstallmentStatus(row[f"{prefix}status"]),
    )


def _record(row: asyncpg.Record, installments: Sequence[Installment]) -> PlanRecord:
    return PlanRecord(
        id=row["id"],
        consumer_id=row["consumer_id"],
        merchant_id=row["merchant_id"],
        checkout_id=row["checkout_id"],
        kind=PlanKind(row["kind"]),
        currency=row["currency"],
        principal=row["principal"],
        original_principal=row["original_principal"],
        refunded_amount=row["refunded_amount"],
        apr_bps=row["apr_bps"],
        status=PlanStatus(row["status"]),
        payment_method_id=row["payment_method_id"],
        late_fees_total=row["late_fees_total"],
        authorization_date=row["authorization_date"],
        created_at=row["created_at"],
        version=row["version"],
        installments=tuple(installments),
    )


def _group(rows: Sequence[asyncpg.Record]) -> list[PlanRecord]:
    """Plans from joined rows (one per installment), keeping the rows' plan order."""
    plans: list[PlanRecord] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end]["id"] != rows[start]["id"]:
            chunk = rows[start:end]
            plans.append(_record(chunk[0], [_installment(r, "i_") for r in chunk]))
            start = end
    return plans


# --------------------------------------------------------------------------- writes


async def insert_plan(
    conn: asyncpg.Connection,
    *,
    plan_id: str,
    checkout_id: str,
    consumer_id: str,
    merchant_id: str,
    kind: PlanKind,
    currency: str,
    principal: int,
    apr_bps: int,
    status: PlanStatus,
    payment_method_id: str,
    authorization_date: date,
    at: datetime,
    schedule: Sequence[ScheduledInstallment],
) -> bool:
    """Insert a plan and its schedule in one statement; False if the checkout has a plan."""
    inserted: int = await conn.fetchval(
        """
        WITH plan AS (
            INSERT INTO installments.plans (
                id, consumer_id, merchant_id, checkout_id, kind, currency, principal,
                original_principal, apr_bps, status, payment_method_id, authorization_date,
                created_at, updated_at
            )
            VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8, $9, $10, $11, $12, $12)
            ON CONFLICT (checkout_id) DO NOTHING
            RETURNING id, consumer_id
        ), schedule AS (
            INSERT INTO installments.installments
                (plan_id, consumer_id, seq, due_date, principal, interest)
            SELECT plan.id, plan.consumer_id, s.seq, s.due_date, s.principal, s.interest
            FROM plan,
                 unnest($13::smallint[], $14::date[], $15::bigint[], $16::bigint[])
                     AS s (seq, due_date, principal, interest)
            RETURNING 1
        )
        SELECT count(*) FROM plan
        """,
        plan_id,
        consumer_id,
        merchant_id,
        checkout_id,
        kind.value,
        currency,
        principal,
        apr_bps,
        status.value,
        payment_method_id,
        authorization_date,
        at,
        [s.seq for s in schedule],
        [s.due_date for s in schedule],
        [s.principal for s in schedule],
        [s.interest for s in schedule],
    )
    return inserted == 1


async def save_plan_state(
    conn: asyncpg.Connection,
    plan_id: str,
    *,
    changed: Sequence[Installment],
    settled_at: datetime,
    principal: int,
    status: PlanStatus,
    refunded_amount: int,
    at: datetime,
) -> None:
    """Write the changed installments and the plan's new totals in one statement.

    ``settled_at`` becomes ``paid_at`` of the changed installments that are now ``paid``
    (an installment keeps the first time it was settled).
    """
    await conn.execute(
        """
        WITH changed AS (
            UPDATE installments.installments i
            SET principal = c.principal, interest = c.interest, fees = c.fees,
                principal_paid = c.principal_paid, interest_paid = c.interest_paid,
                fees_paid = c.fees_paid, status = c.status,
                paid_at = CASE WHEN c.status = 'paid' THEN coalesce(i.paid_at, $10) END
            FROM unnest($2::smallint[], $3::bigint[], $4::bigint[], $5::bigint[],
                        $6::bigint[], $7::bigint[], $8::bigint[], $9::text[])
                AS c (seq, principal, interest, fees, principal_paid, interest_paid,
                      fees_paid, status)
            WHERE i.plan_id = $1 AND i.seq = c.seq
            RETURNING 1
        )
        UPDATE installments.plans
        SET principal = $11, status = $12, refunded_amount = $13, updated_at = $14,
            version = version + 1
        WHERE id = $1
        """,
        plan_id,
        [i.seq for i in changed],
        [i.principal for i in changed],
        [i.interest for i in changed],
        [i.fees for i in changed],
        [i.principal_paid for i in changed],
        [i.interest_paid for i in changed],
        [i.fees_paid for i in changed],
        [i.status.value for i in changed],
        settled_at,
        principal,
        status.value,
        refunded_amount,
        at,
    )


# --------------------------------------------------------------------------- reads


async def lock_plan(conn: asyncpg.Connection, plan_id: str) -> PlanRecord | None:
    """Lock the plan's row (``FOR UPDATE``), then read its installments.

    Two statements on purpose: under READ COMMITTED a statement that waited for the lock
    re-reads only the locked row, so installments read in that same statement could be
    the stale ones from before the previous holder's commit.
    """
    row = await conn.fetchrow(
        f"SELECT {_PLAN_COLUMNS} FROM installments.plans p WHERE p.id = $1 FOR UPDATE",
        plan_id,
    )
    if row is None:
        return None
    rows = await conn.fetch(
        """
        SELECT seq, due_date, principal, interest, fees, principal_paid, interest_paid,
               fees_paid, status
        FROM installments.installments
        WHERE plan_id = $1 AND consumer_id = $2
        ORDER BY seq
        """,
        plan_id,
        row["consumer_id"],
    )
    return _record(row, [_installment(r) for r in rows])


async def fetch_plan(conn: asyncpg.Connection, plan_id: str) -> PlanRecord | None:
    rows = await conn.fetch(
        f"""
        SELECT {_PLAN_COLUMNS}, {_INSTALLMENT_COLUMNS}
        FROM installments.plans p
        JOIN installments.installments i ON i.plan_id = p.id AND i.consumer_id = p.consumer_id
        WHERE p.id = $1
        ORDER BY i.seq
        """,
        plan_id,
    )
    plans = _group(rows)
    return plans[0] if plans else None


async def fetch_plans_of_consumer(
    conn: asyncpg.Connection, consumer_id: str, limit: int, starting_after: str | None
) -> list[PlanRecord]:
    """A consumer's plans, newest first, after the cursor ``starting_after`` (a plan id)."""
    rows = await conn.fetch(
        f"""
        WITH page AS (
            SELECT * FROM installments.plans
            WHERE consumer_id = $1 AND ($2::text IS NULL OR id < $2)
            ORDER BY id DESC
            LIMIT $3
        )
        SELECT {_PLAN_COLUMNS}, {_INSTALLMENT_COLUMNS}
        FROM page p
        JOIN installments.installments i ON i.plan_id = p.id AND i.consumer_id = p.consumer_id
        ORDER BY p.id DESC, i.seq
        """,
        consumer_id,
        starting_after,
        limit,
    )
    return _group(rows)


async def has_plan_in_status(
    conn: asyncpg.Connection, consumer_id: str, statuses: Sequence[PlanStatus]
) -> bool:
    found: bool = await conn.fetchval(
        """
        SELECT EXISTS (
            SELECT 1 FROM installments.plans WHERE consumer_id = $1 AND status = ANY($2::text[])
        )
        """,
        consumer_id,
        [s.value for s in statuses],
    )
    return found


async def unpaid_principal_total(
    conn: asyncpg.Connection, currency: str, open_statuses: Sequence[PlanStatus]
) -> int:
    total: int = await conn.fetchval(
        """
        SELECT coalesce(sum(i.principal - i.principal_paid), 0)::bigint
        FROM installments.plans p
        JOIN installments.installments i ON i.plan_id = p.id AND i.consumer_id = p.consumer_id
        WHERE p.currency = $1 AND p.status = ANY($2::text[])
          AND i.status IN ('scheduled', 'late')
        """,
        currency,
        [s.value for s in open_statuses],
    )
    return total
