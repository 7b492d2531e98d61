"""Settlement tables (schema `merchants`): items, settlements, the days settled."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import asyncpg

from bnpl.merchants.settlements.domain import (
    Item,
    ItemType,
    Settlement,
    SettlementStatus,
    Totals,
)

_COLUMNS = """id, merchant_id, currency, period_start, period_end, captured, refunded, fees,
    carried_over, net, status, created_at, paid_at, payout_reference, payout_failure,
    payout_attempt"""


def _settlement(row: asyncpg.Record) -> Settlement:
    return Settlement(
        id=row["id"],
        merchant_id=row["merchant_id"],
        currency=row["currency"],
        period_start=row["period_start"],
        period_end=row["period_end"],
        totals=Totals(row["captured"], row["refunded"], row["fees"], row["carried_over"]),
        status=SettlementStatus(row["status"]),
        created_at=row["created_at"],
        paid_at=row["paid_at"],
        payout_reference=row["payout_reference"],
        payout_failure=row["payout_failure"],
        payout_attempt=row["payout_attempt"],
    )


def _item(row: asyncpg.Record) -> Item:
    return Item(
        type=ItemType(row["type"]),
        reference=row["reference"],
        checkout_id=row["checkout_id"],
        merchant_id=row["merchant_id"],
        currency=row["currency"],
        amount=row["amount"],
        occurred_at=row["occurred_at"],
    )


# --------------------------------------------------------------------------- items


async def insert_items(
    conn: asyncpg.Connection, items: Sequence[Item], settlement_ids: Sequence[str | None] = ()
) -> None:
    """Record items (unsettled, or each in the settlement beside it in `settlement_ids`); an
    item already recorded (same type and reference) is left as it is."""
    if not items:
        return
    ids = list(settlement_ids) or [None] * len(items)
    await conn.execute(
        """
        INSERT INTO merchants.settlement_items
            (merchant_id, currency, type, reference, checkout_id, amount, occurred_at,
             settlement_id)
        SELECT r->>0, r->>1, r->>2, r->>3, r->>4, (r->>5)::bigint, (r->>6)::timestamptz, r->>7
        FROM jsonb_array_elements($1::jsonb) AS r
        ON CONFLICT (type, reference) DO NOTHING
        """,
        [
            (
                i.merchant_id,
                i.currency,
                i.type.value,
                i.reference,
                i.checkout_id,
                i.amount,
                i.occurred_at.isoformat(),
                settlement_id,
            )
            for i, settlement_id in zip(items, ids, strict=True)
        ],
    )


async def items_of(conn: asyncpg.Connection, settlement_id: str) -> list[Item]:
    rows = await conn.fetch(
        "SELECT * FROM merchants.settlement_items WHERE settlement_id = $1 ORDER BY id",
        settlement_id,
    )
    return [_item(r) for r in rows]


async def earliest_unsettled(conn: asyncpg.Connection) -> datetime | None:
    at: datetime | None = await conn.fetchval(
        "SELECT min(occurred_at) FROM merchants.settlement_items WHERE settlement_id IS NULL"
    )
    return at


# --------------------------------------------------------------------------- settling a day


async def last_settled_day(conn: asyncpg.Connection) -> date | None:
    day: date | None = await conn.fetchval("SELECT max(day) FROM merchants.settlement_days")
    return day


async def open_carries(
    conn: asyncpg.Connection, groups: Sequence[tuple[str, str]]
) -> list[Settlement]:
    """The shortfalls of these (merchant, currency) that no later settlement has netted yet
    (locked)."""
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM merchants.settlements s
        WHERE s.status = 'carried_over' AND s.carried_into IS NULL
          AND s.merchant_id = ANY($2::text[])
          AND EXISTS (SELECT 1 FROM jsonb_array_elements($1::jsonb) AS g
                      WHERE g->>0 = s.merchant_id AND g->>1 = s.currency)
        ORDER BY s.id FOR UPDATE
        """,
        list(groups),
        sorted({merchant for merchant, _ in groups}),
    )
    return [_settlement(r) for r in rows]


async def unsettled_groups(conn: asyncpg.Connection, until: datetime) -> list[tuple[str, str]]:
    """(merchant, currency) of every unsettled item whose time is before `until`."""
    rows = await conn.fetch(
        """
        SELECT DISTINCT merchant_id, currency FROM merchants.settlement_items
        WHERE settlement_id IS NULL AND occurred_at < $1
        """,
        until,
    )
    return [(r["merchant_id"], r["currency"]) for r in rows]


async def claim_items(
    conn: asyncpg.Connection, ids: dict[tuple[str, str], str], until: datetime
) -> None:
    """Give every unsettled item before `until` of each (merchant, currency) its settlement."""
    await conn.execute(
        """
        UPDATE merchants.settlement_items i SET settlement_id = r->>2
        FROM jsonb_array_elements($1::jsonb) AS r
        WHERE i.settlement_id IS NULL AND i.occurred_at < $2
          AND i.merchant_id = r->>0 AND i.currency = r->>1
        """,
        [(merchant, currency, sid) for (merchant, currency), sid in ids.items()],
        until,
    )


async def totals(conn: asyncpg.Connection, settlement_ids: Sequence[str]) -> dict[str, Totals]:
    """Each settlement's figures, summed from the items it claimed."""
    rows = await conn.fetch(
        """
        SELECT settlement_id,
               coalesce(sum(amount) FILTER (WHERE type = 'capture'), 0) AS captured,
               coalesce(-sum(amount) FILTER (WHERE type = 'refund'), 0) AS refunded,
               coalesce(-sum(amount) FILTER (WHERE type = 'fee'), 0) AS fees,
               coalesce(sum(amount) FILTER (WHERE type = 'carried_over'), 0) AS carried_over
        FROM merchants.settlement_items
        WHERE settlement_id = ANY($1::text[])
        GROUP BY settlement_id
        """,
        list(settlement_ids),
    )
    return {
        r["settlement_id"]: Totals(
            int(r["captured"]), int(r["refunded"]), int(r["fees"]), int(r["carried_over"])
        )
        for r in rows
    }


async def mark_carried_into(conn: asyncpg.Connection, pairs: Sequence[tuple[str, str]]) -> None:
    """(carried settlement, the settlement that nets it)."""
    if pairs:
        await conn.execute(
            """
            UPDATE merchants.settlements s SET carried_into = r->>1
            FROM jsonb_array_elements($1::jsonb) AS r
            WHERE s.id = r->>0 AND s.id = ANY($2::text[])
            """,
            list(pairs),
            [old for old, _ in pairs],
        )


async def insert_settlements(
    conn: asyncpg.Connection, settlements: Sequence[Settlement], payout_due_at: datetime
) -> None:
    rows: list[tuple[Any, ...]] = [
        (
            s.id,
            s.merchant_id,
            s.currency,
            s.period_start.isoformat(),
            s.period_end.isoformat(),
            s.totals.captured,
            s.totals.refunded,
            s.totals.fees,
            s.totals.carried_over,
            s.net,
            s.status.value,
            s.created_at.isoformat(),
            None if s.paid_at is None else s.paid_at.isoformat(),
        )
        for s in settlements
    ]
    await conn.execute(
        """
        INSERT INTO merchants.settlements
            (id, merchant_id, currency, period_start, period_end, captured, refunded, fees,
             carried_over, net, status, created_at, paid_at, payout_due_at)
        SELECT r->>0, r->>1, r->>2, (r->>3)::timestamptz, (r->>4)::timestamptz,
               (r->>5)::bigint, (r->>6)::bigint, (r->>7)::bigint, (r->>8)::bigint,
               (r->>9)::bigint, r->>10, (r->>11)::timestamptz, (r->>12)::timestamptz,
               CASE WHEN r->>10 = 'pending' THEN $2::timestamptz END
        FROM jsonb_array_elements($1::jsonb) AS r
        """,
        rows,
        payout_due_at,
    )


async def record_day(conn: asyncpg.Connection, day: date, settlements: int, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO merchants.settlement_days (day, settlements, settled_at) VALUES ($1, $2, $3)",
        day,
        settlements,
        at,
    )


# --------------------------------------------------------------------------- payouts


async def next_payout_due(conn: asyncpg.Connection) -> datetime | None:
    due: datetime | None = await conn.fetchval(
        "SELECT min(payout_due_at) FROM merchants.settlements WHERE status = 'pending'"
    )
    return due


async def claim_payouts(
    conn: asyncpg.Connection, now: datetime, until: datetime, limit: int
) -> list[Settlement]:
    """Pending settlements whose payout is due, leased until `until` (other workers skip
    them meanwhile; a lease that runs out means the payout is sent again, with its key)."""
    rows = await conn.fetch(
        """
        WITH due AS (
            SELECT id FROM merchants.settlements
            WHERE status = 'pending' AND payout_due_at <= $1
            ORDER BY payout_due_at, id LIMIT $3 FOR UPDATE SKIP LOCKED
        )
        UPDATE merchants.settlements s SET payout_due_at = $2
        FROM due WHERE s.id = due.id
        RETURNING s.*
        """,
        now,
        until,
        limit,
    )
    return sorted((_settlement(r) for r in rows), key=lambda s: s.id)


async def lock(conn: asyncpg.Connection, settlement_id: str) -> Settlement | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM merchants.settlements WHERE id = $1 FOR UPDATE", settlement_id
    )
    return None if row is None else _settlement(row)


async def mark_paid(
    conn: asyncpg.Connection, settlement_id: str, reference: str, at: datetime
) -> None:
    await conn.execute(
        "UPDATE merchants.settlements SET status = 'paid', paid_at = $3, payout_reference = $2, "
        "payout_due_at = NULL, payout_failure = NULL WHERE id = $1",
        settlement_id,
        reference,
        at,
    )


async def reschedule_payout(
    conn: asyncpg.Connection,
    settlement_id: str,
    due_at: datetime,
    *,
    failure: str | None = None,
    next_attempt: bool = False,
) -> None:
    await conn.execute(
        "UPDATE merchants.settlements SET payout_due_at = $2, "
        "payout_failure = coalesce($3, payout_failure), "
        "payout_attempt = payout_attempt + CASE WHEN $4 THEN 1 ELSE 0 END WHERE id = $1",
        settlement_id,
        due_at,
        failure,
        next_attempt,
    )


# --------------------------------------------------------------------------- reading


async def get(conn: asyncpg.Connection, settlement_id: str) -> Settlement | None:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM merchants.settlements WHERE id = $1", settlement_id
    )
    return None if row is None else _settlement(row)


async def list_settlements(
    conn: asyncpg.Connection,
    *,
    merchant_id: str | None,
    status: str | None,
    after: str | None,
    limit: int,
) -> list[Settlement]:
    rows = await conn.fetch(
        f"""
        SELECT {_COLUMNS} FROM merchants.settlements
        WHERE ($1::text IS NULL OR merchant_id = $1) AND ($2::text IS NULL OR status = $2)
          AND ($3::text IS NULL OR id > $3)
        ORDER BY id LIMIT $4
        """,
        merchant_id,
        status,
        after,
        limit,
    )
    return [_settlement(r) for r in rows]


async def settled_out(conn: asyncpg.Connection) -> dict[str, int]:
    """Per currency, what settlements have moved out of merchant_payable in the ledger: the
    nets paid out and the shortfalls netted, less the shortfalls carried over."""
    rows = await conn.fetch(
        """
        SELECT currency,
               sum(CASE WHEN status = 'paid' THEN net ELSE 0 END)
             - sum(carried_over)
             + sum(CASE WHEN status = 'carried_over' THEN net ELSE 0 END) AS moved
        FROM merchants.settlements GROUP BY currency
        """
    )
    return {r["currency"]: int(r["moved"]) for r in rows}
