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
        SELECT n.id, n.consumer_id, n.plan_id, n.checkout_id, n.kind, n.amount, n.currency,
               'processing', n.payment_method_id, n.gateway_token, n.id, $1, $1
        FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[],
                    $8::text[], $9::text[], $10::text[]) WITH ORDINALITY
             AS n (id, consumer_id, plan_id, checkout_id, kind, amount, currency,
                   payment_method_id, gateway_token, i)
        ORDER BY n.i
        RETURNING {_COLUMNS}
        """,
        at,
        [p.payment_id for p in payments],
        [p.consumer_id for p in payments],
        [p.plan_id for p in payments],
        [p.checkout_id for p in payments],
        [p.kind.value for p in payments],
        [p.amount for p in payments],
        [p.currency for p in payments],
        [p.payment_method_id for p in payments],
        [p.gateway_token for p in payments],
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
    tried = [(o.payment_id, i, a) for o in outcomes for i, a in enumerate(o.attempts, start=1)]
    await conn.execute(
        """
        WITH added AS (
            INSERT INTO payments.attempts (payment_id, n, at, outcome, code, gateway_reference)
            SELECT a.payment_id,
                   a.i + coalesce((SELECT max(n) FROM payments.attempts x
                                   WHERE x.payment_id = a.payment_id), 0),
                   a.at, a.outcome, a.code, a.reference
            FROM unnest($2::text[], $3::int[], $4::timestamptz[], $5::text[], $6::text[],
                        $7::text[]) AS a (payment_id, i, at, outcome, code, reference)
        )
        UPDATE payments.payments p
        SET status = u.status, failure_code = u.failure_code,
            gateway_reference = coalesce(u.reference, p.gateway_reference),
            next_attempt_at = u.next_attempt_at, updated_at = $1
        FROM unnest($8::text[], $9::text[], $10::text[], $11::text[], $12::timestamptz[])
            AS u (id, status, failure_code, reference, next_attempt_at)
        WHERE p.id = u.id AND p.id = ANY($8::text[])
        """,
        at,
        [payment_id for payment_id, _, _ in tried],
        [i for _, i, _ in tried],
        [a.at for _, _, a in tried],
        [a.outcome for _, _, a in tried],
        [a.code for _, _, a in tried],
        [a.gateway_reference for _, _, a in tried],
        [o.payment_id for o in outcomes],
        [o.status.value for o in outcomes],
        [o.failure_code for o in outcomes],
        [o.gateway_reference for o in outcomes],
        [o.next_attempt_at for o in outcomes],
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
