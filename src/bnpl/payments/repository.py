"""All SQL of the payments context."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from bnpl.payments.domain import Attempt, Payment, PaymentKind, PaymentStatus

_COLUMNS = (
    "id, consumer_id, plan_id, checkout_id, kind, amount, currency, status, failure_code, "
    "payment_method_id, gateway_key, gateway_token, gateway_reference, next_attempt_at, created_at"
)


_KINDS: Final = {k.value: k for k in PaymentKind}  # by dict: a collection reads thousands
_STATUSES: Final = {s.value: s for s in PaymentStatus}


def _payment(row: asyncpg.Record, attempts: Sequence[asyncpg.Record] = ()) -> Payment:
    return Payment(
        id=row["id"],
        consumer_id=row["consumer_id"],
        plan_id=row["plan_id"],
        checkout_id=row["checkout_id"],
        kind=_KINDS[row["kind"]],
        amount=row["amount"],
        currency=row["currency"],
        status=_STATUSES[row["status"]],
        failure_code=row["failure_code"],
        payment_method_id=row["payment_method_id"],
        gateway_key=row["gateway_key"],
        gateway_token=row["gateway_token"],
        gateway_reference=row["gateway_reference"],
        next_attempt_at=row["next_attempt_at"],
        created_at=row["created_at"],
        attempts=tuple(
            Attempt(a["at"], a["outcome"], a["code"], a["gateway_reference"]) for a in attempts
        ),
    )


@dataclass(frozen=True, slots=True)
class NewPayment:
    """A payment row about to be written (`insert_payments`)."""

    payment_id: str
    consumer_id: str
    plan_id: str | None
    checkout_id: str | None
    kind: PaymentKind
    amount: int
    currency: str
    payment_method_id: str | None
    gateway_token: str | None


async def insert_payments(
    conn: asyncpg.Connection, payments: Sequence[NewPayment], *, at: datetime
) -> list[Payment]:
    """Insert `processing` payments (their id is their gateway key), in one statement."""
    rows = await conn.fetch(
        f"""
        INSERT INTO payments.payments
            (id, consumer_id, plan_id, checkout_id, kind, amount, currency, status,
             payment_method_id, gateway_token, gateway_key, created_at, updated_at)
        SELECT n->>0, n->>1, n->>2, n->>3, n->>4, (n->>5)::bigint, n->>6, 'processing',
               n->>7, n->>8, n->>0, $1, $1
        FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS r (n, i)
        ORDER BY r.i
        RETURNING {_COLUMNS}
        """,
        at,
        [  # rows as jsonb (kit.db)
            (
                p.payment_id,
                p.consumer_id,
                p.plan_id,
                p.checkout_id,
                p.kind.value,
                p.amount,
                p.currency,
                p.payment_method_id,
                p.gateway_token,
            )
            for p in payments
        ],
    )
    by_id = {r["id"]: _payment(r) for r in rows}
    return [by_id[p.payment_id] for p in payments]


async def insert_payment(conn: asyncpg.Connection, payment: NewPayment, at: datetime) -> Payment:
    [inserted] = await insert_payments(conn, [payment], at=at)
    return inserted


async def get_payment(
    conn: asyncpg.Connection, payment_id: str, *, lock: bool = False, with_attempts: bool = True
) -> Payment | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM payments.payments WHERE id = $1" + (" FOR UPDATE" if lock else ""),
        payment_id,
    )
    if row is None:
        return None
    if not with_attempts:
        return _payment(row)
    attempts = await conn.fetch(
        "SELECT at, outcome, code, gateway_reference FROM payments.attempts "
        "WHERE payment_id = $1 ORDER BY n",
        payment_id,
    )
    return _payment(row, attempts)


async def get_payments(conn: asyncpg.Connection, payment_ids: Sequence[str]) -> list[Payment]:
    """Payments by id (without their attempts), in no particular order."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM payments.payments WHERE id = ANY($1::text[])", list(payment_ids)
    )
    return [_payment(r) for r in rows]


async def list_payments(
    conn: asyncpg.Connection,
    *,
    plan_id: str | None,
    consumer_id: str | None,
    after: str | None,
    limit: int,
) -> list[Payment]:
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM payments.payments
        WHERE ($1::text IS NULL OR plan_id = $1) AND ($2::text IS NULL OR consumer_id = $2)
          AND ($3::text IS NULL OR id > $3)
        ORDER BY id LIMIT $4
        """,
        plan_id,
        consumer_id,
        after,
        limit,
    )
    if not rows:
        return []
    attempts = await conn.fetch(
        "SELECT payment_id, at, outcome, code, gateway_reference FROM payments.attempts "
        "WHERE payment_id = ANY($1) ORDER BY payment_id, n",
        [r["id"] for r in rows],
    )
    by_payment: dict[str, list[asyncpg.Record]] = {}
    for a in attempts:
        by_payment.setdefault(a["payment_id"], []).append(a)
    return [_payment(r, by_payment.get(r["id"], [])) for r in rows]


@dataclass(frozen=True, slots=True)
class Outcome:
    """A payment's new status and the gateway attempts that led to it (`record_outcomes`)."""

    payment_id: str
    status: PaymentStatus
    failure_code: str | None
    gateway_reference: str | None
    next_attempt_at: datetime | None
    attempts: Sequence[Attempt]


async def record_outcomes(
    conn: asyncpg.Connection, outcomes: Sequence[Outcome], *, at: datetime
) -> None:
    """The payments' new statuses and their attempts (numbered on), in one statement."""
    await conn.execute(
        """
        WITH added AS (
            INSERT INTO payments.attempts (payment_id, n, at, outcome, code, gateway_reference)
            SELECT a->>0,
                   (a->>1)::int + coalesce((SELECT max(n) FROM payments.attempts x
                                            WHERE x.payment_id = a->>0), 0),
                   (a->>2)::timestamptz, a->>3, a->>4, a->>5
            FROM jsonb_array_elements($2::jsonb) AS a
        )
        UPDATE payments.payments p
        SET status = u->>1, failure_code = u->>2,
            gateway_reference = coalesce(u->>3, p.gateway_reference),
            next_attempt_at = (u->>4)::timestamptz, updated_at = $1
        FROM jsonb_array_elements($3::jsonb) AS u
        WHERE p.id = u->>0 AND p.id = ANY($4::text[])
        """,
        at,
        [  # rows as jsonb (kit.db)
            (o.payment_id, i, a.at, a.outcome, a.code, a.gateway_reference)
            for o in outcomes
            for i, a in enumerate(o.attempts, start=1)
        ],
        [
            (o.payment_id, o.status.value, o.failure_code, o.gateway_reference, o.next_attempt_at)
            for o in outcomes
        ],
        [o.payment_id for o in outcomes],
    )


async def refundable_charges(conn: asyncpg.Connection, plan_id: str) -> list[asyncpg.Record]:
    """Succeeded charges of a plan with something left to refund, newest first, locked."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT id, gateway_reference, amount - refunded_amount AS refundable
        FROM payments.payments
        WHERE plan_id = $1 AND kind <> 'refund' AND status = 'succeeded'
          AND amount > refunded_amount
        ORDER BY created_at DESC, id DESC
        FOR UPDATE
        """,
        plan_id,
    )
    return rows


async def insert_refund_slices(
    conn: asyncpg.Connection, refund_id: str, slices: Sequence[tuple[str, str, int]]
) -> None:
    await conn.executemany(
        "INSERT INTO payments.refund_slices "
        "(refund_id, n, charge_payment_id, charge_reference, amount, gateway_key) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        [
            (refund_id, n, charge_id, reference, amount, f"{refund_id}.{n}")
            for n, (charge_id, reference, amount) in enumerate(slices, start=1)
        ],
    )
    await conn.executemany(
        "UPDATE payments.payments SET refunded_amount = refunded_amount + $2 WHERE id = $1",
        [(charge_id, amount) for charge_id, _, amount in slices],
    )


async def refund_slices(conn: asyncpg.Connection, refund_id: str) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT n, charge_reference, amount, gateway_key, gateway_reference "
        "FROM payments.refund_slices WHERE refund_id = $1 ORDER BY n",
        refund_id,
    )
    return rows


async def mark_slice_refunded(
    conn: asyncpg.Connection, refund_id: str, n: int, reference: str | None
) -> None:
    await conn.execute(
        "UPDATE payments.refund_slices SET gateway_reference = $3 WHERE refund_id = $1 AND n = $2",
        refund_id,
        n,
        reference,
    )


async def attach_to_plan(conn: asyncpg.Connection, payment_id: str, plan_id: str) -> None:
    await conn.execute(
        "UPDATE payments.payments SET plan_id = $2 WHERE id = $1 AND plan_id IS NULL",
        payment_id,
        plan_id,
    )


async def set_statuses(
    conn: asyncpg.Connection, payment_ids: Sequence[str], status: PaymentStatus, *, at: datetime
) -> None:
    await conn.execute(
        "UPDATE payments.payments SET status = $2, next_attempt_at = NULL, updated_at = $3 "
        "WHERE id = ANY($1::text[])",
        list(payment_ids),
        status.value,
        at,
    )
