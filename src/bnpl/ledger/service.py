"""Ledger use cases: posting an entry, reading balances and entries.

`post` runs in the caller's transaction, so the entry commits (or rolls back) with the business
change that causes it. It writes no audit record: the calling use case audits its money
movement (its `Command.respond` or its own `audit.record`) and may name the entry id there;
keeping `post` to one statement is what lets it sit on the checkout hot path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from bnpl.kit.ids import new_id
from bnpl.ledger import repository
from bnpl.ledger.domain import (
    Account,
    IdempotencyConflict,
    Line,
    PostingError,
    Side,
    net_by_account,
    signed_balance,
    validate_entry,
)

MAX_TEXT = 255


def _text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TEXT:
        raise PostingError(f"{what} must be a string of 1 to {MAX_TEXT} characters")
    return value


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


async def post(
    conn: asyncpg.Connection,
    *,
    kind: str,
    reference_id: str,
    currency: str,
    lines: Sequence[Line],
    at: datetime,
    consumer_id: str | None = None,
    merchant_id: str | None = None,
    idempotency_key: str | None = None,
) -> str:
    """Write one balanced journal entry in the caller's transaction; returns its `jrn_` id.

    Raises `PostingError` (a `ValueError`) before touching the database unless the lines
    balance, every amount is a positive int and the currency is supported. With an
    `idempotency_key` (unique across the ledger: namespace it, e.g. `<event id>:<consumer>`),
    a replay writes nothing and returns the first entry's id; a replay whose kind, reference,
    currency or total differ raises `IdempotencyConflict`. Under READ COMMITTED (the platform's
    default) it never waits on another posting, except on a concurrent first write of the same
    idempotency key; under REPEATABLE READ or SERIALIZABLE a concurrent posting to the same
    balance bucket can raise a serialization failure, to be retried like any other.
    """
    kind_ = _text(kind, "kind")
    reference = _text(reference_id, "reference_id")
    consumer = _optional_text(consumer_id, "consumer_id")
    merchant = _optional_text(merchant_id, "merchant_id")
    key = _optional_text(idempotency_key, "idempotency_key")
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise PostingError("`at` must be a timezone-aware datetime")
    lines = tuple(lines)
    total = validate_entry(currency, lines)
    net = net_by_account(lines)
    row = await repository.insert_entry(
        conn,
        entry_id=new_id("jrn"),
        kind=kind_,
        reference_id=reference,
        currency=currency,
        amount=total,
        at=at,
        consumer_id=consumer,
        merchant_id=merchant,
        idempotency_key=key,
        line_accounts=[line.account.value for line in lines],
        line_sides=[line.side.value for line in lines],
        line_amounts=[line.amount for line in lines],
        net_accounts=[account.value for account in net],
        net_debits=[d for d, _ in net.values()],
        net_credits=[c for _, c in net.values()],
    )
    if row is None and key is not None:
        # The first write of this key committed after our statement took its snapshot.
        row = await repository.entry_by_idempotency_key(conn, key)
    if row is None:
        raise RuntimeError("ledger entry was neither written nor found")
    entry_id: str = row["id"]
    if not row["created"]:
        first = (row["kind"], row["reference_id"], row["currency"], row["amount"])
        if first != (kind_, reference, currency, total):
            raise IdempotencyConflict(
                f"idempotency key {key!r} first wrote {entry_id} "
                f"({row['kind']} {row['reference_id']} {row['amount']} {row['currency']})"
            )
    return entry_id


@dataclass(frozen=True, slots=True)
class Posting:
    """One entry for `post_many`."""

    kind: str
    reference_id: str
    currency: str
    lines: Sequence[Line]
    consumer_id: str | None = None
    merchant_id: str | None = None


async def post_many(
    conn: asyncpg.Connection, postings: Sequence[Posting], *, at: datetime
) -> list[str]:
    """Write several balanced entries in one statement (a batch job's); their `jrn_` ids.

    Each posting is checked as `post` checks one, all before touching the database; the
    balances move once per account and currency, by the sum of all of them.
    """
    if not isinstance(at, datetime) or at.tzinfo is None or at.utcoffset() is None:
        raise PostingError("`at` must be a timezone-aware datetime")
    if not postings:
        return []
    entries: list[tuple[str, str, str, str, int, str | None, str | None]] = []
    lines: list[tuple[str, int, str, str, int, str]] = []
    net: dict[tuple[str, str], list[int]] = {}
    for posting in postings:
        entry_id = new_id("jrn")
        posted = tuple(posting.lines)
        total = validate_entry(posting.currency, posted)
        entries.append(
            (
                entry_id,
                _text(posting.kind, "kind"),
                _text(posting.reference_id, "reference_id"),
                posting.currency,
                total,
                _optional_text(posting.consumer_id, "consumer_id"),
                _optional_text(posting.merchant_id, "merchant_id"),
            )
        )
        for n, line in enumerate(posted, start=1):
            lines.append(
                (entry_id, n, line.account.value, line.side.value, line.amount, posting.currency)
            )
        for account, (debits, credits) in net_by_account(posted).items():
            pair = net.setdefault((account.value, posting.currency), [0, 0])
            pair[0] += debits
            pair[1] += credits
    await repository.insert_entries(
        conn,
        at=at,
        entries=entries,
        lines=lines,
        # Sorted, so that concurrent batches pick their buckets in one order.
        net=[(a, c, d, k) for (a, c), (d, k) in sorted(net.items())],
    )
    return [e[0] for e in entries]


# --------------------------------------------------------------------------- balances


@dataclass(frozen=True, slots=True)
class AccountBalance:
    """Totals of one account in one currency; `balance` is signed by the normal side."""

    account: str
    currency: str
    debits: int
    credits: int
    balance: int
    normal_side: Side


def _chart_account(name: str) -> Account | None:
    try:
        return Account(name)
    except ValueError:
        return None


def _shape(name: str, currency: str, debits: int, credits: int) -> AccountBalance:
    account = _chart_account(name)
    side = account.normal_side if account is not None else Side.DEBIT
    balance = signed_balance(account, debits, credits) if account is not None else debits - credits
    return AccountBalance(name, currency, debits, credits, balance, side)


async def balances(conn: asyncpg.Connection, currency: str | None = None) -> list[AccountBalance]:
    """Every account and currency the ledger has seen, in the chart's order."""
    order = {a.value: i for i, a in enumerate(Account)}
    rows = await repository.balances(conn, currency)
    found = [_shape(r["account"], r["currency"], int(r["debits"]), int(r["credits"])) for r in rows]
    found.sort(key=lambda b: (order.get(b.account, len(order)), b.account, b.currency))
    return found


async def account_balance(
    conn: asyncpg.Connection,
    account: Account | str,
    currency: str,
    *,
    merchant_id: str | None = None,
    consumer_id: str | None = None,
) -> int:
    """The balance of `account` in `currency`, signed by its normal side (so the
    consumer-receivable balance is the unpaid principal owed to us, the merchant-payable
    balance what we owe merchants). With `merchant_id` / `consumer_id`, only the entries
    posted for that merchant / consumer count (summed from the journal: slower)."""
    chart = Account(account)
    if merchant_id is None and consumer_id is None:
        debits, credits = await repository.account_totals(conn, chart.value, currency)
    else:
        debits, credits = await repository.account_totals_for(
            conn, chart.value, currency, merchant_id=merchant_id, consumer_id=consumer_id
        )
    return signed_balance(chart, debits, credits)


async def balances_by_reference(conn: asyncpg.Connection, account: Account | str) -> dict[str, int]:
    """The balance `account` carries for each entry reference (signed by its normal side),
    for the references where it is not zero. Summed over the whole journal: for checks."""
    chart = Account(account)
    rows = await repository.totals_by_reference(conn, chart.value)
    return {
        r["reference_id"]: signed_balance(chart, int(r["debits"]), int(r["credits"])) for r in rows
    }


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True, slots=True)
class EntryLine:
    account: str
    side: Side
    amount: int


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    kind: str
    reference_id: str
    currency: str
    amount: int
    at: datetime
    consumer_id: str | None
    merchant_id: str | None
    idempotency_key: str | None
    created_at: datetime
    lines: tuple[EntryLine, ...]


async def _with_lines(conn: asyncpg.Connection, rows: Sequence[asyncpg.Record]) -> list[Entry]:
    by_entry: dict[str, list[EntryLine]] = {r["id"]: [] for r in rows}
    if rows:
        for line in await repository.lines_of(conn, list(by_entry)):
            by_entry[line["entry_id"]].append(
                EntryLine(line["account"], Side(line["side"]), int(line["amount"]))
            )
    return [
        Entry(
            id=r["id"],
            kind=r["kind"],
            reference_id=r["reference_id"],
            currency=r["currency"],
            amount=int(r["amount"]),
            at=r["at"],
            consumer_id=r["consumer_id"],
            merchant_id=r["merchant_id"],
            idempotency_key=r["idempotency_key"],
            created_at=r["created_at"],
            lines=tuple(by_entry[r["id"]]),
        )
        for r in rows
    ]


async def entries(
    conn: asyncpg.Connection,
    *,
    reference_id: str | None = None,
    consumer_id: str | None = None,
    merchant_id: str | None = None,
    kind: str | None = None,
    after: str | None = None,
    limit: int = 100,
) -> list[Entry]:
    """Entries (with their lines) in creation order, filtered; at most `limit`."""
    rows = await repository.list_entries(
        conn,
        after=after,
        limit=limit,
        reference_id=reference_id,
        consumer_id=consumer_id,
        merchant_id=merchant_id,
        kind=kind,
    )
    return await _with_lines(conn, rows)


async def entry(conn: asyncpg.Connection, entry_id: str) -> Entry | None:
    row = await repository.get_entry(conn, entry_id)
    if row is None:
        return None
    return (await _with_lines(conn, [row]))[0]
