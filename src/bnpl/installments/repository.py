"""All SQL of the installments context (schema `installments`).

Every function takes the caller's connection; none opens a transaction. Joins between the
two tables always match `consumer_id` too, so they stay shard-local when the tables are
distributed by consumer (ARCHITECTURE.md, "Scale").
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Final, NamedTuple

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
    p.late_fees_total, p.authorization_date, p.created_at, p.version,
    p.collection_due_at, p.collection_payment_id, p.collection_attempt,
    p.collection_exhausted_through, p.autopay_blocked, p.charge_off_at
"""
# Prefixed, so they can sit next to the plan's columns in one joined row.
_INSTALLMENT_COLUMNS = """
    i.seq AS i_seq, i.due_date AS i_due_date, i.principal AS i_principal,
    i.interest AS i_interest, i.fees AS i_fees, i.principal_paid AS i_principal_paid,
    i.interest_paid AS i_interest_paid, i.fees_paid AS i_fees_paid, i.status AS i_status,
    i.interest_accrued AS i_interest_accrued
"""


class PlanRecord(NamedTuple):
    """A stored plan with its installments as domain state.

    A named tuple, not a frozen dataclass: a collection run builds and copies several per
    installment, and a tuple is built in a third of the time and copied (`_replace`) in a
    seventh.
    """

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
    # Collections (see migrations/0002_collections.sql).
    accrued: frozenset[int] = frozenset()  # seqs whose interest is booked as receivable
    collection_due_at: datetime | None = None
    collection_payment_id: str | None = None
    collection_attempt: int = 0
    collection_exhausted_through: date | None = None
    autopay_blocked: bool = False
    charge_off_at: datetime | None = None


# Enum members by stored value, looked up by dict (a collection run reads thousands of rows).
_STATUSES: Final = {s.value: s for s in InstallmentStatus}
_KINDS: Final = {k.value: k for k in PlanKind}
_PLAN_STATUSES: Final = {s.value: s for s in PlanStatus}


def _installment(row: asyncpg.Record, prefix: str = "") -> Installment:
    if prefix:
        return Installment(
            seq=row[f"{prefix}seq"],
            due_date=row[f"{prefix}due_date"],
            principal=row[f"{prefix}principal"],
            interest=row[f"{prefix}interest"],
            fees=row[f"{prefix}fees"],
            principal_paid=row[f"{prefix}principal_paid"],
            interest_paid=row[f"{prefix}interest_paid"],
            fees_paid=row[f"{prefix}fees_paid"],
            status=_STATUSES[row[f"{prefix}status"]],
        )
    return Installment(  # the hot path of collections: no key formatting
        seq=row["seq"],
        due_date=row["due_date"],
        principal=row["principal"],
        interest=row["interest"],
        fees=row["fees"],
        principal_paid=row["principal_paid"],
        interest_paid=row["interest_paid"],
        fees_paid=row["fees_paid"],
        status=_STATUSES[row["status"]],
    )


def _record(
    row: asyncpg.Record, installments: Sequence[Installment], accrued: frozenset[int]
) -> PlanRecord:
    return PlanRecord(
        id=row["id"],
        consumer_id=row["consumer_id"],
        merchant_id=row["merchant_id"],
        checkout_id=row["checkout_id"],
        kind=_KINDS[row["kind"]],
        currency=row["currency"],
        principal=row["principal"],
        original_principal=row["original_principal"],
        refunded_amount=row["refunded_amount"],
        apr_bps=row["apr_bps"],
        status=_PLAN_STATUSES[row["status"]],
        payment_method_id=row["payment_method_id"],
        late_fees_total=row["late_fees_total"],
        authorization_date=row["authorization_date"],
        created_at=row["created_at"],
        version=row["version"],
        installments=tuple(installments),
        accrued=accrued,
        collection_due_at=row["collection_due_at"],
        collection_payment_id=row["collection_payment_id"],
        collection_attempt=row["collection_attempt"],
        collection_exhausted_through=row["collection_exhausted_through"],
        autopay_blocked=row["autopay_blocked"],
        charge_off_at=row["charge_off_at"],
    )


def _group(rows: Sequence[asyncpg.Record]) -> list[PlanRecord]:
    """Plans from joined rows (one per installment), keeping the rows' plan order."""
    plans: list[PlanRecord] = []
    start = 0
    for end in range(1, len(rows) + 1):
        if end == len(rows) or rows[end]["id"] != rows[start]["id"]:
            chunk = rows[start:end]
            accrued = frozenset(r["i_seq"] for r in chunk if r["i_interest_accrued"])
            plans.append(_record(chunk[0], [_installment(r, "i_") for r in chunk], accrued))
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
               fees_paid, status, interest_accrued
        FROM installments.installments
        WHERE plan_id = $1 AND consumer_id = $2
        ORDER BY seq
        """,
        plan_id,
        row["consumer_id"],
    )
    accrued = frozenset(r["seq"] for r in rows if r["interest_accrued"])
    return _record(row, [_installment(r) for r in rows], accrued)


async def lock_plans(
    conn: asyncpg.Connection,
    plan_ids: Sequence[str],
    known: Mapping[str, PlanRecord] | None = None,
) -> list[PlanRecord]:
    """`lock_plan` for many plans, locked in (consumer, plan) order so two batches never
    deadlock; the records in that order (unknown ids are left out).

    A plan's installments change only with its `version`: those of a `known` record whose
    version is still the stored one are not read again (one statement instead of two).
    """
    rows = await conn.fetch(
        f"""
        SELECT {_PLAN_COLUMNS} FROM installments.plans p WHERE p.id = ANY($1::text[])
        ORDER BY p.consumer_id, p.id
        FOR UPDATE
        """,
        list(plan_ids),
    )
    return await _with_installments(conn, rows, known or {})


async def _with_installments(
    conn: asyncpg.Connection,
    rows: Sequence[asyncpg.Record],
    known: Mapping[str, PlanRecord] | None = None,
) -> list[PlanRecord]:
    """The plans of `rows` with their installments, read by a statement of its own (see
    `lock_plan`: a statement that waited for the plan locks would read stale installments),
    except those of `known` records of the same version."""
    if not rows:
        return []
    same = {
        row["id"]: seen
        for row in rows
        if (seen := (known or {}).get(row["id"])) is not None and seen.version == row["version"]
    }
    rest = [row for row in rows if row["id"] not in same]
    by_plan = await _installments_of(conn, rest) if rest else {}
    records = []
    for row in rows:
        if (seen := same.get(row["id"])) is not None:
            records.append(_record(row, seen.installments, seen.accrued))
            continue
        mine = by_plan.get(row["id"], [])
        accrued = frozenset(r["seq"] for r in mine if r["interest_accrued"])
        records.append(_record(row, [_installment(r) for r in mine], accrued))
    return records


async def _installments_of(
    conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]
) -> dict[str, list[asyncpg.Record]]:
    found = await conn.fetch(
        """
        SELECT i.plan_id, i.seq, i.due_date, i.principal, i.interest, i.fees, i.principal_paid,
               i.interest_paid, i.fees_paid, i.status, i.interest_accrued
        FROM installments.installments i
        WHERE i.plan_id = ANY($1::text[]) AND i.consumer_id = ANY($2::text[])
        ORDER BY i.plan_id, i.seq
        """,
        [r["id"] for r in rows],
        [r["consumer_id"] for r in rows],
    )
    by_plan: dict[str, list[asyncpg.Record]] = {}
    for i in found:
        by_plan.setdefault(i["plan_id"], []).append(i)
    return by_plan


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


# --------------------------------------------------------------------------- collections


async def save_collection_state(
    conn: asyncpg.Connection,
    plan_id: str,
    *,
    collection_due_at: datetime | None,
    collection_payment_id: str | None,
    collection_attempt: int,
    collection_exhausted_through: date | None,
    autopay_blocked: bool,
    charge_off_at: datetime | None,
) -> None:
    await conn.execute(
        """
        UPDATE installments.plans
        SET collection_due_at = $2, collection_payment_id = $3, collection_attempt = $4,
            collection_exhausted_through = $5, autopay_blocked = $6, charge_off_at = $7
        WHERE id = $1
        """,
        plan_id,
        collection_due_at,
        collection_payment_id,
        collection_attempt,
        collection_exhausted_through,
        autopay_blocked,
        charge_off_at,
    )


def _collection_state(r: PlanRecord) -> tuple[object, ...]:
    """The collection columns of a plan, in the order the batch statements read them."""
    return (
        r.collection_due_at,
        r.collection_payment_id,
        r.collection_attempt,
        r.collection_exhausted_through,
        r.autopay_blocked,
        r.charge_off_at,
    )


async def save_plans(
    conn: asyncpg.Connection,
    saved: Sequence[tuple[PlanRecord, Sequence[Installment]]],
    *,
    at: datetime,
) -> None:
    """Plans' new state in one statement: each `(record, changed installments)` writes the
    changed installments (whether their interest is booked: `record.accrued`) and the
    record's totals, status and collection state (its version goes up by one). ``at``
    becomes ``paid_at`` of the changed installments that are now ``paid`` (an installment
    keeps the first time it was settled)."""
    await conn.execute(
        """
        WITH changed AS (
            UPDATE installments.installments i
            SET principal = (c->>3)::bigint, interest = (c->>4)::bigint, fees = (c->>5)::bigint,
                principal_paid = (c->>6)::bigint, interest_paid = (c->>7)::bigint,
                fees_paid = (c->>8)::bigint, status = c->>9, interest_accrued = (c->>10)::bool,
                paid_at = CASE WHEN c->>9 = 'paid' THEN coalesce(i.paid_at, $1) END
            FROM jsonb_array_elements($2::jsonb) AS c
            WHERE i.plan_id = c->>0 AND i.consumer_id = c->>1 AND i.seq = (c->>2)::smallint
              AND i.plan_id = ANY($3::text[])
            RETURNING 1
        )
        UPDATE installments.plans p
        SET principal = (u->>1)::bigint, status = u->>2, refunded_amount = (u->>3)::bigint,
            late_fees_total = (u->>4)::bigint, updated_at = $1, version = p.version + 1,
            collection_due_at = (u->>5)::timestamptz, collection_payment_id = u->>6,
            collection_attempt = (u->>7)::int, collection_exhausted_through = (u->>8)::date,
            autopay_blocked = (u->>9)::bool, charge_off_at = (u->>10)::timestamptz
        FROM jsonb_array_elements($4::jsonb) AS u
        WHERE p.id = u->>0 AND p.id = ANY($5::text[])
        """,
        at,
        [  # rows as jsonb (kit.db)
            (
                r.id,
                r.consumer_id,
                i.seq,
                i.principal,
                i.interest,
                i.fees,
                i.principal_paid,
                i.interest_paid,
                i.fees_paid,
                i.status.value,
                i.seq in r.accrued,
            )
            for r, installments in saved
            for i in installments
        ],
        [r.id for r, installments in saved if installments],
        [
            (
                r.id,
                r.principal,
                r.status.value,
                r.refunded_amount,
                r.late_fees_total,
                *_collection_state(r),
            )
            for r, _ in saved
        ],
        [r.id for r, _ in saved],
    )


async def save_collection_states(conn: asyncpg.Connection, records: Sequence[PlanRecord]) -> None:
    """`save_collection_state` of many locked plans, from their records, in one statement."""
    await conn.execute(
        """
        UPDATE installments.plans p
        SET collection_due_at = (u->>1)::timestamptz, collection_payment_id = u->>2,
            collection_attempt = (u->>3)::int, collection_exhausted_through = (u->>4)::date,
            autopay_blocked = (u->>5)::bool, charge_off_at = (u->>6)::timestamptz
        FROM jsonb_array_elements($1::jsonb) AS u
        WHERE p.id = u->>0 AND p.id = ANY($2::text[])
        """,
        [  # rows as jsonb (kit.db)
            (r.id, *_collection_state(r)) for r in records
        ],
        [r.id for r in records],
    )


async def mark_accrued_many(
    conn: asyncpg.Connection, accrued: Sequence[tuple[str, str, int]]
) -> None:
    """Mark the interest of `(plan_id, consumer_id, seq)` installments booked, in one
    statement; their plans' versions go up (installments never change without it)."""
    await conn.execute(
        """
        WITH marked AS (
            UPDATE installments.installments i SET interest_accrued = true
            FROM unnest($1::text[], $2::text[], $3::smallint[]) AS a (plan_id, consumer_id, seq)
            WHERE i.plan_id = a.plan_id AND i.consumer_id = a.consumer_id AND i.seq = a.seq
              AND i.plan_id = ANY($1::text[])
        )
        UPDATE installments.plans SET version = version + 1 WHERE id = ANY($1::text[])
        """,
        [plan_id for plan_id, _, _ in accrued],
        [consumer_id for _, consumer_id, _ in accrued],
        [seq for _, _, seq in accrued],
    )


async def set_payment_method(conn: asyncpg.Connection, plan_id: str, pm_id: str) -> None:
    await conn.execute(
        "UPDATE installments.plans SET payment_method_id = $2 WHERE id = $1", plan_id, pm_id
    )


async def claim_due_plans(
    conn: asyncpg.Connection, column: str, now: datetime, limit: int, statuses: Sequence[str]
) -> list[PlanRecord]:
    """`claim_plans`, with the claimed plans read whole (two statements)."""
    rows = await conn.fetch(
        f"""
        SELECT {_PLAN_COLUMNS} FROM installments.plans p
        WHERE p.{column} <= $1 AND p.status = ANY($3::text[])
        ORDER BY p.{column} LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        now,
        limit,
        list(statuses),
    )
    return await _with_installments(conn, rows)


async def claim_plans(
    conn: asyncpg.Connection, column: str, now: datetime, limit: int, statuses: Sequence[str]
) -> list[str]:
    """Plans whose `column` (a due time) has come, locked, skipping ones another worker holds."""
    rows = await conn.fetch(
        f"""
        SELECT id FROM installments.plans
        WHERE {column} <= $1 AND status = ANY($3::text[])
        ORDER BY {column} LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        now,
        limit,
        list(statuses),
    )
    return [r["id"] for r in rows]


async def earliest(
    conn: asyncpg.Connection, column: str, statuses: Sequence[str]
) -> datetime | None:
    found: datetime | None = await conn.fetchval(
        f"SELECT min({column}) FROM installments.plans WHERE status = ANY($1::text[])",
        list(statuses),
    )
    return found


async def earliest_unpaid_scheduled_due(conn: asyncpg.Connection) -> date | None:
    """The oldest due date of a `scheduled` installment of an open plan (late-fee runs)."""
    found: date | None = await conn.fetchval(
        """
        SELECT min(i.due_date) FROM installments.installments i
        JOIN installments.plans p ON p.id = i.plan_id AND p.consumer_id = i.consumer_id
        WHERE i.status = 'scheduled' AND p.status IN ('active', 'delinquent')
        """
    )
    return found


async def claim_plans_with_unpaid_due(
    conn: asyncpg.Connection, due_on_or_before: date, limit: int
) -> list[str]:
    rows = await conn.fetch(
        """
        SELECT p.id FROM installments.plans p
        WHERE p.status IN ('active', 'delinquent') AND EXISTS (
            SELECT 1 FROM installments.installments i
            WHERE i.plan_id = p.id AND i.consumer_id = p.consumer_id
              AND i.status = 'scheduled' AND i.due_date <= $1
        )
        ORDER BY p.id LIMIT $2
        FOR UPDATE SKIP LOCKED
        """,
        due_on_or_before,
        limit,
    )
    return [r["id"] for r in rows]


async def receivable_totals(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """Per currency, what the open plans owe: principal, accrued interest, fees."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT p.currency,
               coalesce(sum(i.principal - i.principal_paid), 0)::bigint AS principal,
               coalesce(sum(i.interest - i.interest_paid)
                        FILTER (WHERE i.interest_accrued), 0)::bigint AS interest,
               coalesce(sum(i.fees - i.fees_paid), 0)::bigint AS fees
        FROM installments.plans p
        JOIN installments.installments i ON i.plan_id = p.id AND i.consumer_id = p.consumer_id
        WHERE p.status IN ('active', 'delinquent') AND i.status IN ('scheduled', 'late')
        GROUP BY p.currency
        """
    )
    return rows


async def portfolio(
    conn: asyncpg.Connection, currency: str, merchant_id: str | None
) -> asyncpg.Record:
    """Now, in one currency (and of one merchant): plans active, plans delinquent, and what
    open plans owe as receivables (unpaid principal, accrued unpaid interest, unpaid fees)."""
    row: asyncpg.Record = await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM installments.plans p
           WHERE p.status = 'active' AND p.currency = $1
             AND ($2::text IS NULL OR p.merchant_id = $2)) AS active,
          (SELECT count(*) FROM installments.plans p
           WHERE p.status = 'delinquent' AND p.currency = $1
             AND ($2::text IS NULL OR p.merchant_id = $2)) AS delinquent,
          (SELECT coalesce(sum(i.principal - i.principal_paid + i.fees - i.fees_paid
                               + CASE WHEN i.interest_accrued
                                      THEN i.interest - i.interest_paid ELSE 0 END), 0)::bigint
           FROM installments.plans p
           JOIN installments.installments i ON i.plan_id = p.id AND i.consumer_id = p.consumer_id
           WHERE p.status IN ('active', 'delinquent') AND i.status IN ('scheduled', 'late')
             AND p.currency = $1 AND ($2::text IS NULL OR p.merchant_id = $2)) AS receivables
        """,
        currency,
        merchant_id,
    )
    return row
