"""All SQL of the ledger context."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

# One statement, one round trip: the entry, its lines (unnest of parallel arrays) and the
# balance buckets. `picked` takes, per account, a bucket no other transaction holds (SKIP
# LOCKED: never waits); `grown` opens a bucket at a random slot when every bucket is held (or
# none exists yet). A replayed idempotency key inserts no entry, so nothing else happens and the
# last SELECT answers the first entry (when its transaction committed before this statement
# began; otherwise the caller looks it up again).
_POST = """
WITH entry AS (
    INSERT INTO ledger.entries
        (id, kind, reference_id, currency, amount, at, consumer_id, merchant_id, idempotency_key)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
    RETURNING id
),
journal AS (
    INSERT INTO ledger.lines (entry_id, line_no, account, side, amount, currency)
    SELECT entry.id, l.line_no::smallint, l.account, l.side, l.amount, $4
    FROM entry
    CROSS JOIN unnest($10::text[], $11::text[], $12::bigint[])
        WITH ORDINALITY AS l(account, side, amount, line_no)
),
picked AS MATERIALIZED (
    SELECT d.account, d.debits, d.credits, b.slot
    FROM entry
    CROSS JOIN unnest($13::text[], $14::bigint[], $15::bigint[]) AS d(account, debits, credits)
    LEFT JOIN LATERAL (
        SELECT bb.slot FROM ledger.balance_buckets bb
        WHERE bb.account = d.account AND bb.currency = $4
        ORDER BY random()
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) b ON true
),
bumped AS (
    UPDATE ledger.balance_buckets bb
    SET debits = bb.debits + p.debits, credits = bb.credits + p.credits
    FROM picked p
    WHERE p.slot IS NOT NULL AND bb.account = p.account AND bb.currency = $4 AND bb.slot = p.slot
),
grown AS (
    INSERT INTO ledger.balance_buckets AS bb (account, currency, slot, debits, credits)
    SELECT p.account, $4, floor(random() * 2147483647)::integer, p.debits, p.credits
    FROM picked p
    WHERE p.slot IS NULL
    ON CONFLICT (account, currency, slot) DO UPDATE
    SET debits = bb.debits + EXCLUDED.debits, credits = bb.credits + EXCLUDED.credits
)
SELECT id, true AS created, NULL::text AS kind, NULL::text AS reference_id,
       NULL::text AS currency, NULL::bigint AS amount
FROM entry
UNION ALL
SELECT id, false, kind, reference_id, currency, amount
FROM ledger.entries
WHERE $9::text IS NOT NULL AND idempotency_key = $9 AND NOT EXISTS (SELECT 1 FROM entry)
"""


# Many entries in one statement (a batch job's): entries, lines, and one bucket bump per
# (account, currency) for the sum of all of them, picked as in `_POST`. Entries and lines
# come as jsonb arrays of rows (see `kit.db`: rows as jsonb).
_POST_MANY = """
WITH entry AS (
    INSERT INTO ledger.entries
        (id, kind, reference_id, currency, amount, at, consumer_id, merchant_id)
    SELECT e->>0, e->>1, e->>2, e->>3, (e->>4)::bigint, $1, e->>5, e->>6
    FROM jsonb_array_elements($2::jsonb) AS e
),
journal AS (
    INSERT INTO ledger.lines (entry_id, line_no, account, side, amount, currency)
    SELECT l->>0, (l->>1)::smallint, l->>2, l->>3, (l->>4)::bigint, l->>5
    FROM jsonb_array_elements($3::jsonb) AS l
),
picked AS MATERIALIZED (
    SELECT d.account, d.currency, d.debits, d.credits, b.slot
    FROM unnest($4::text[], $5::text[], $6::bigint[], $7::bigint[])
         AS d (account, currency, debits, credits)
    LEFT JOIN LATERAL (
        SELECT bb.slot FROM ledger.balance_buckets bb
        WHERE bb.account = d.account AND bb.currency = d.currency
        ORDER BY random()
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    ) b ON true
),
bumped AS (
    UPDATE ledger.balance_buckets bb
    SET debits = bb.debits + p.debits, credits = bb.credits + p.credits
    FROM picked p
    WHERE p.slot IS NOT NULL AND bb.account = p.account AND bb.currency = p.currency
      AND bb.slot = p.slot
)
INSERT INTO ledger.balance_buckets AS bb (account, currency, slot, debits, credits)
SELECT p.account, p.currency, floor(random() * 2147483647)::integer, p.debits, p.credits
FROM picked p
WHERE p.slot IS NULL
ON CONFLICT (account, currency, slot) DO UPDATE
SET debits = bb.debits + EXCLUDED.debits, credits = bb.credits + EXCLUDED.credits
"""


async def insert_entry(
    conn: asyncpg.Connection,
    *,
    entry_id: str,
    kind: str,
    reference_id: str,
    currency: str,
    amount: int,
    at: datetime,
    consumer_id: str | None,
    merchant_id: str | None,
    idempotency_key: str | None,
    line_accounts: Sequence[str],
    line_sides: Sequence[str],
    line_amounts: Sequence[int],
    net_accounts: Sequence[str],
    net_debits: Sequence[int],
    net_credits: Sequence[int],
) -> asyncpg.Record | None:
    """Write one entry; the row says whether it was `created` or replayed (or None: replayed,
    but the first write committed after this statement began: see `entry_by_idempotency_key`)."""
    row: asyncpg.Record | None = await conn.fetchrow(
        _POST,
        entry_id,
        kind,
        reference_id,
        currency,
        amount,
        at,
        consumer_id,
        merchant_id,
        idempotency_key,
        line_accounts,
        line_sides,
        line_amounts,
        net_accounts,
        net_debits,
        net_credits,
    )
    return row


async def insert_entries(
    conn: asyncpg.Connection,
    *,
    at: datetime,
    entries: Sequence[tuple[str, str, str, str, int, str | None, str | None]],
    lines: Sequence[tuple[str, int, str, str, int, str]],
    net: Sequence[tuple[str, str, int, int]],
) -> None:
    """Write many entries at once: `entries` (id, kind, reference_id, currency, amount,
    consumer_id, merchant_id), `lines` (entry_id, line_no, account, side, amount, currency)
    and `net` (account, currency, debits, credits) summed over all of them."""
    await conn.execute(
        _POST_MANY,
        at,
        entries,
        lines,
        *(list(column) for column in zip(*net, strict=True)),
    )


async def entry_by_idempotency_key(conn: asyncpg.Connection, key: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, false AS created, kind, reference_id, currency, amount "
        "FROM ledger.entries WHERE idempotency_key = $1",
        key,
    )
    return row


# --------------------------------------------------------------------------- balances


async def balances(conn: asyncpg.Connection, currency: str | None = None) -> list[asyncpg.Record]:
    """(account, currency, debits, credits) summed over the buckets."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT account, currency, sum(debits)::bigint AS debits, sum(credits)::bigint AS credits
        FROM ledger.balance_buckets
        WHERE $1::text IS NULL OR currency = $1
        GROUP BY account, currency
        ORDER BY account, currency
        """,
        currency,
    )
    return rows


async def account_totals(conn: asyncpg.Connection, account: str, currency: str) -> tuple[int, int]:
    row = await conn.fetchrow(
        """
        SELECT coalesce(sum(debits), 0)::bigint AS debits,
               coalesce(sum(credits), 0)::bigint AS credits
        FROM ledger.balance_buckets WHERE account = $1 AND currency = $2
        """,
        account,
        currency,
    )
    assert row is not None
    return int(row["debits"]), int(row["credits"])


async def account_totals_for(
    conn: asyncpg.Connection,
    account: str,
    currency: str,
    *,
    merchant_id: str | None,
    consumer_id: str | None,
) -> tuple[int, int]:
    """Totals of one account over the entries of one merchant and/or consumer (from the
    journal, through the entries' merchant/consumer indexes)."""
    row = await conn.fetchrow(
        """
        SELECT coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0)::bigint AS debits,
               coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0)::bigint AS credits
        FROM ledger.entries e
        JOIN ledger.lines l ON l.entry_id = e.id
        WHERE l.account = $1 AND e.currency = $2
          AND ($3::text IS NULL OR e.merchant_id = $3)
          AND ($4::text IS NULL OR e.consumer_id = $4)
        """,
        account,
        currency,
        merchant_id,
        consumer_id,
    )
    assert row is not None
    return int(row["debits"]), int(row["credits"])


async def totals_by_reference(conn: asyncpg.Connection, account: str) -> list[asyncpg.Record]:
    """(reference_id, debits, credits) of one account, per entry reference, where they differ
    (a reference whose entries net to zero on the account is left out)."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT e.reference_id,
               coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0)::bigint AS debits,
               coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0)::bigint AS credits
        FROM ledger.lines l
        JOIN ledger.entries e ON e.id = l.entry_id
        WHERE l.account = $1
        GROUP BY e.reference_id
        HAVING coalesce(sum(l.amount) FILTER (WHERE l.side = 'debit'), 0)
            <> coalesce(sum(l.amount) FILTER (WHERE l.side = 'credit'), 0)
        """,
        account,
    )
    return rows


# --------------------------------------------------------------------------- reading entries


async def list_entries(
    conn: asyncpg.Connection,
    *,
    after: str | None,
    limit: int,
    reference_id: str | None = None,
    consumer_id: str | None = None,
    merchant_id: str | None = None,
    kind: str | None = None,
) -> list[asyncpg.Record]:
    """Entries in id (creation) order, `limit` of them after the id `after`."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT id, kind, reference_id, currency, amount, at, consumer_id, merchant_id,
               idempotency_key, created_at
        FROM ledger.entries
        WHERE ($1::text IS NULL OR id > $1)
          AND ($2::text IS NULL OR reference_id = $2)
          AND ($3::text IS NULL OR consumer_id = $3)
          AND ($4::text IS NULL OR merchant_id = $4)
          AND ($5::text IS NULL OR kind = $5)
        ORDER BY id
        LIMIT $6
        """,
        after,
        reference_id,
        consumer_id,
        merchant_id,
        kind,
        limit,
    )
    return rows


async def get_entry(conn: asyncpg.Connection, entry_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, kind, reference_id, currency, amount, at, consumer_id, merchant_id, "
        "idempotency_key, created_at FROM ledger.entries WHERE id = $1",
        entry_id,
    )
    return row


async def lines_of(conn: asyncpg.Connection, entry_ids: Sequence[str]) -> list[asyncpg.Record]:
    rows: list[asyncpg.Record] = await conn.fetch(
        "SELECT entry_id, line_no, account, side, amount FROM ledger.lines "
        "WHERE entry_id = ANY($1::text[]) ORDER BY entry_id, line_no",
        list(entry_ids),
    )
    return rows


# --------------------------------------------------------------------------- verification


async def unbalanced_entries(conn: asyncpg.Connection, sample: int = 5) -> tuple[int, list[str]]:
    """Entries whose lines do not balance, do not add up to the entry's amount, are missing or
    carry another currency than the entry: (how many, a sample of ids)."""
    rows = await conn.fetch(
        """
        WITH per_entry AS (
            SELECT entry_id,
                   coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0) AS debits,
                   coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0) AS credits,
                   min(currency) AS min_currency,
                   max(currency) AS max_currency
            FROM ledger.lines
            GROUP BY entry_id
        ),
        bad AS (
            SELECT e.id
            FROM ledger.entries e
            LEFT JOIN per_entry p ON p.entry_id = e.id
            WHERE p.entry_id IS NULL
               OR p.debits <> p.credits
               OR p.debits <> e.amount
               OR p.min_currency <> e.currency
               OR p.max_currency <> e.currency
        )
        SELECT id, count(*) OVER () AS total FROM bad ORDER BY id LIMIT $1
        """,
        sample,
    )
    if not rows:
        return 0, []
    return int(rows[0]["total"]), [r["id"] for r in rows]


async def trial_balance(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """(currency, debits, credits) over every line of the journal."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        SELECT currency,
               coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0)::bigint AS debits,
               coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0)::bigint AS credits
        FROM ledger.lines
        GROUP BY currency
        ORDER BY currency
        """
    )
    return rows


async def non_positive_amounts(conn: asyncpg.Connection) -> int:
    count = await conn.fetchval(
        "SELECT (SELECT count(*) FROM ledger.lines WHERE amount <= 0)"
        " + (SELECT count(*) FROM ledger.entries WHERE amount <= 0)"
    )
    return int(count)


async def foreign_accounts(conn: asyncpg.Connection, chart: Sequence[str]) -> list[str]:
    """Accounts used by lines that are not in the chart."""
    rows = await conn.fetch(
        "SELECT DISTINCT account FROM ledger.lines WHERE account <> ALL($1::text[]) "
        "ORDER BY account",
        list(chart),
    )
    return [r["account"] for r in rows]


async def bucket_mismatches(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    """(account, currency) whose bucket totals differ from the journal's."""
    rows: list[asyncpg.Record] = await conn.fetch(
        """
        WITH journal AS (
            SELECT account, currency,
                   coalesce(sum(amount) FILTER (WHERE side = 'debit'), 0)::bigint AS debits,
                   coalesce(sum(amount) FILTER (WHERE side = 'credit'), 0)::bigint AS credits
            FROM ledger.lines GROUP BY account, currency
        ),
        buckets AS (
            SELECT account, currency, sum(debits)::bigint AS debits,
                   sum(credits)::bigint AS credits
            FROM ledger.balance_buckets GROUP BY account, currency
        )
        SELECT coalesce(j.account, b.account) AS account,
               coalesce(j.currency, b.currency) AS currency,
               coalesce(j.debits, 0) AS journal_debits, coalesce(j.credits, 0) AS journal_credits,
               coalesce(b.debits, 0) AS bucket_debits, coalesce(b.credits, 0) AS bucket_credits
        FROM journal j
        FULL JOIN buckets b ON b.account = j.account AND b.currency = j.currency
        WHERE coalesce(j.debits, 0) <> coalesce(b.debits, 0)
           OR coalesce(j.credits, 0) <> coalesce(b.credits, 0)
        ORDER BY 1, 2
        """
    )
    return rows
