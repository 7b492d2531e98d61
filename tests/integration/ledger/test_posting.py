"""Posting against the real PostgreSQL: atomicity, append-only journal, idempotency keys,
concurrency and running balances."""

from __future__ import annotations

import asyncio
import secrets
import time
from datetime import datetime

import asyncpg
import pytest

from bnpl import ledger
from bnpl.ledger import Account as A
from bnpl.runtime import Runtime
from tests.integration.ledger.conftest import CURRENCY, TEST_KIND, Scratch


def ref() -> str:
    return f"chk_ledgertest{secrets.token_hex(6)}"


async def totals(rt: Runtime, currency: str = CURRENCY) -> dict[str, tuple[int, int]]:
    async with rt.db.connection() as conn:
        return {b.account: (b.debits, b.credits) for b in await ledger.balances(conn, currency)}


def delta(
    after: dict[str, tuple[int, int]], before: dict[str, tuple[int, int]], account: A
) -> tuple[int, int]:
    a, b = after.get(account.value, (0, 0)), before.get(account.value, (0, 0))
    return a[0] - b[0], a[1] - b[1]


async def count_entries(rt: Runtime, reference_id: str) -> int:
    n = await rt.db.fetchval(
        "SELECT count(*) FROM ledger.entries WHERE reference_id = $1", reference_id
    )
    return int(n)


async def test_post_writes_one_entry_with_its_lines_and_moves_balances(
    rt: Runtime, scratch: Scratch
) -> None:
    before = await totals(rt)
    reference = ref()
    entry_id = await scratch.post(
        ledger.capture(captured=40_000, fee=1_626),
        kind=f"{TEST_KIND}.captured",
        reference_id=reference,
        merchant_id="mer_ledgertest1",
    )
    assert entry_id.startswith("jrn_")
    async with rt.db.connection() as conn:
        entry = await ledger.entry(conn, entry_id)
        assert entry is not None
        assert (entry.kind, entry.reference_id, entry.currency, entry.amount) == (
            f"{TEST_KIND}.captured",
            reference,
            CURRENCY,
            41_626,
        )
        assert entry.merchant_id == "mer_ledgertest1" and entry.consumer_id is None
        assert [(x.account, x.side, x.amount) for x in entry.lines] == [
            ("merchant_authorized", "debit", 40_000),
            ("merchant_payable", "credit", 40_000),
            ("merchant_payable", "debit", 1_626),
            ("fee_revenue", "credit", 1_626),
        ]
        assert [e.id for e in await ledger.entries(conn, reference_id=reference)] == [entry_id]
        payable = await ledger.account_balance(
            conn, A.MERCHANT_PAYABLE, CURRENCY, merchant_id="mer_ledgertest1"
        )
        assert payable == 40_000 - 1_626
    after = await totals(rt)
    assert delta(after, before, A.MERCHANT_AUTHORIZED) == (40_000, 0)
    assert delta(after, before, A.MERCHANT_PAYABLE) == (1_626, 40_000)
    assert delta(after, before, A.FEE_REVENUE) == (0, 1_626)


async def test_account_balance_is_signed_by_the_normal_side(rt: Runtime, scratch: Scratch) -> None:
    async with rt.db.connection() as conn:
        receivable = await ledger.account_balance(conn, A.CONSUMER_RECEIVABLE, CURRENCY)
        authorized = await ledger.account_balance(conn, "merchant_authorized", CURRENCY)
    await scratch.post(ledger.authorization(25_000), consumer_id="cus_ledgertest1")
    await scratch.post(ledger.consumer_payment(principal=6_250), consumer_id="cus_ledgertest1")
    async with rt.db.connection() as conn:
        assert (
            await ledger.account_balance(conn, A.CONSUMER_RECEIVABLE, CURRENCY)
            == receivable + 18_750
        )
        assert await ledger.account_balance(conn, A.MERCHANT_AUTHORIZED, CURRENCY) == (
            authorized + 25_000
        )
        mine = await ledger.account_balance(
            conn, A.CONSUMER_RECEIVABLE, CURRENCY, consumer_id="cus_ledgertest1"
        )
        assert mine == 18_750


async def test_several_postings_in_one_transaction_commit_together(
    rt: Runtime, scratch: Scratch
) -> None:
    """A pay_in_4 confirm: the authorization and the down payment in one transaction."""
    reference = ref()
    entries = [ledger.authorization(40_000), ledger.consumer_payment(principal=10_000)]
    async with rt.db.transaction() as conn:
        for lines in entries:
            await ledger.post(
                conn,
                kind=f"{TEST_KIND}.confirm",
                reference_id=reference,
                currency=CURRENCY,
                lines=lines,
                at=rt.clock.now(),
            )
    for lines in entries:
        scratch.record(CURRENCY, lines)
    assert await count_entries(rt, reference) == 2


async def test_a_rolled_back_transaction_leaves_no_entry_and_no_balance(rt: Runtime) -> None:
    before = await totals(rt)
    reference = ref()
    with pytest.raises(RuntimeError, match="business change failed"):
        async with rt.db.transaction() as conn:
            await ledger.post(
                conn,
                kind=f"{TEST_KIND}.authorized",
                reference_id=reference,
                currency=CURRENCY,
                lines=ledger.authorization(10_000),
                at=rt.clock.now(),
            )
            raise RuntimeError("business change failed")
    assert await count_entries(rt, reference) == 0
    assert await totals(rt) == before


@pytest.mark.parametrize(
    "lines",
    [
        [ledger.debit(A.CONSUMER_RECEIVABLE, 100), ledger.credit(A.MERCHANT_AUTHORIZED, 99)],
        [ledger.debit(A.CONSUMER_RECEIVABLE, 100)],
        [],
    ],
    ids=["unbalanced", "one-sided", "empty"],
)
async def test_an_unbalanced_post_raises_and_writes_nothing(
    rt: Runtime, lines: list[ledger.Line]
) -> None:
    before = await totals(rt)
    reference = ref()
    async with rt.db.transaction() as conn:
        with pytest.raises(ValueError):
            await ledger.post(
                conn,
                kind=f"{TEST_KIND}.bad",
                reference_id=reference,
                currency=CURRENCY,
                lines=lines,
                at=rt.clock.now(),
            )
        # Nothing reached the database: the caller's transaction is still usable.
        assert await conn.fetchval("SELECT 1") == 1
    assert await count_entries(rt, reference) == 0
    assert await totals(rt) == before


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"currency": "JPY"}, "currency"),
        ({"currency": "aud"}, "currency"),
        ({"at": datetime(2026, 1, 1)}, "timezone"),  # noqa: DTZ001 - naive on purpose
        ({"kind": ""}, "kind"),
        ({"reference_id": ""}, "reference_id"),
        ({"idempotency_key": ""}, "idempotency_key"),
        ({"merchant_id": 42}, "merchant_id"),
    ],
)
async def test_post_rejects_bad_arguments(
    rt: Runtime, overrides: dict[str, object], message: str
) -> None:
    reference = ref()
    args: dict[str, object] = {
        "kind": f"{TEST_KIND}.bad",
        "reference_id": reference,
        "currency": CURRENCY,
        "lines": ledger.authorization(100),
        "at": rt.clock.now(),
    }
    args.update(overrides)
    async with rt.db.transaction() as conn:
        with pytest.raises(ledger.PostingError, match=message):
            await ledger.post(conn, **args)  # type: ignore[arg-type]
    assert await count_entries(rt, reference) == 0


async def test_mixed_currency_lines_are_refused(rt: Runtime) -> None:
    lines = [
        ledger.Line(A.CONSUMER_RECEIVABLE, ledger.Side.DEBIT, 100, "USD"),
        ledger.Line(A.MERCHANT_AUTHORIZED, ledger.Side.CREDIT, 100, "AUD"),
    ]
    async with rt.db.transaction() as conn:
        with pytest.raises(ledger.PostingError, match="mixed"):
            await ledger.post(
                conn,
                kind=f"{TEST_KIND}.bad",
                reference_id=ref(),
                currency="USD",
                lines=lines,
                at=rt.clock.now(),
            )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE ledger.entries SET amount = amount + 1 WHERE id = $1",
        "UPDATE ledger.entries SET kind = 'edited' WHERE id = $1",
        "DELETE FROM ledger.entries WHERE id = $1",
        "UPDATE ledger.lines SET amount = amount + 1 WHERE entry_id = $1",
        "UPDATE ledger.lines SET side = 'credit' WHERE entry_id = $1",
        "DELETE FROM ledger.lines WHERE entry_id = $1",
        "TRUNCATE ledger.lines, ledger.entries",
    ],
)
async def test_journal_rows_are_never_updated_or_deleted(
    rt: Runtime, scratch: Scratch, statement: str
) -> None:
    entry_id = await scratch.post(ledger.late_fee(700))
    async with rt.db.transaction() as conn:
        args = [entry_id] if "$1" in statement else []
        with pytest.raises(asyncpg.PostgresError, match="append-only"):
            await conn.execute(statement, *args)
    async with rt.db.connection() as conn:
        entry = await ledger.entry(conn, entry_id)
    assert entry is not None and entry.amount == 700 and len(entry.lines) == 2


async def test_the_database_refuses_bad_lines_even_past_the_python_checks(rt: Runtime) -> None:
    """Constraints back the Python checks (a line with amount 0, an unknown side)."""
    async with rt.db.connection() as conn:
        outer = conn.transaction()
        await outer.start()
        try:
            entry_id = await ledger.post(
                conn,
                kind=f"{TEST_KIND}.probe",
                reference_id=ref(),
                currency=CURRENCY,
                lines=ledger.late_fee(1),
                at=rt.clock.now(),
            )
            for values in ((99, "fees_receivable", "debit", 0), (98, "fees_receivable", "up", 1)):
                with pytest.raises(asyncpg.CheckViolationError):
                    async with conn.transaction():
                        await conn.execute(
                            "INSERT INTO ledger.lines (entry_id, line_no, account, side, amount, "
                            "currency) VALUES ($1, $2, $3, $4, $5, 'AUD')",
                            entry_id,
                            *values,
                        )
        finally:
            await outer.rollback()  # the probe entry never commits


async def test_an_idempotency_key_replay_writes_once(rt: Runtime, scratch: Scratch) -> None:
    before = await totals(rt)
    reference = ref()
    key = f"evt_ledgertest{secrets.token_hex(6)}:installments.paid"
    lines = ledger.consumer_payment(principal=10_000, fees=700)
    args = {
        "kind": f"{TEST_KIND}.payment",
        "reference_id": reference,
        "currency": CURRENCY,
        "lines": lines,
        "idempotency_key": key,
    }
    first = await scratch.post(**args)  # type: ignore[arg-type]
    async with rt.db.transaction() as conn:  # a redelivered event, in a later transaction
        again = await ledger.post(conn, at=rt.clock.now(), **args)  # type: ignore[arg-type]
        twice = await ledger.post(conn, at=rt.clock.now(), **args)  # type: ignore[arg-type]
    assert first == again == twice
    assert await count_entries(rt, reference) == 1
    after = await totals(rt)
    assert delta(after, before, A.GATEWAY_CLEARING) == (10_700, 0)
    assert delta(after, before, A.FEES_RECEIVABLE) == (0, 700)

    # The same key for another entry is a bug in the caller: refused, nothing written.
    async with rt.db.transaction() as conn:
        with pytest.raises(ledger.IdempotencyConflict):
            await ledger.post(
                conn,
                kind=f"{TEST_KIND}.payment",
                reference_id=reference,
                currency=CURRENCY,
                lines=ledger.consumer_payment(principal=9_999),
                at=rt.clock.now(),
                idempotency_key=key,
            )
    assert await count_entries(rt, reference) == 1


async def test_an_idempotency_key_within_one_transaction(rt: Runtime, scratch: Scratch) -> None:
    reference = ref()
    key = f"ledgertest:{secrets.token_hex(6)}"
    async with rt.db.transaction() as conn:
        ids = {
            await ledger.post(
                conn,
                kind=f"{TEST_KIND}.accrual",
                reference_id=reference,
                currency=CURRENCY,
                lines=ledger.interest_accrual(263),
                at=rt.clock.now(),
                idempotency_key=key,
            )
            for _ in range(3)
        }
    scratch.record(CURRENCY, ledger.interest_accrual(263))
    assert len(ids) == 1
    assert await count_entries(rt, reference) == 1


async def test_concurrent_replays_of_one_key_write_one_entry(rt: Runtime, scratch: Scratch) -> None:
    reference = ref()
    key = f"ledgertest:{secrets.token_hex(6)}"
    lines = ledger.late_fee(700)

    async def deliver() -> str:
        async with rt.db.transaction() as conn:
            entry_id = await ledger.post(
                conn,
                kind=f"{TEST_KIND}.late_fee",
                reference_id=reference,
                currency=CURRENCY,
                lines=lines,
                at=rt.clock.now(),
                idempotency_key=key,
            )
            await asyncio.sleep(0.01)  # hold the transaction open while others arrive
            return entry_id

    ids = await asyncio.gather(*(deliver() for _ in range(8)))
    scratch.record(CURRENCY, lines)
    assert len(set(ids)) == 1
    assert await count_entries(rt, reference) == 1


async def test_concurrent_posts_all_land_and_balances_add_up(rt: Runtime, scratch: Scratch) -> None:
    """200 checkouts' postings from parallel tasks, some transactions with two entries (a
    confirm: authorization + down payment) and some with one 4-line capture."""
    before = await totals(rt)
    reference = ref()
    tasks = 200
    confirm = [ledger.authorization(40_000), ledger.consumer_payment(principal=10_000)]
    capture = [ledger.capture(captured=40_000, fee=1_626)]

    async def checkout(i: int) -> None:
        batch = confirm if i % 2 else capture
        async with rt.db.transaction() as conn:
            for lines in batch:
                await ledger.post(
                    conn,
                    kind=f"{TEST_KIND}.concurrent",
                    reference_id=reference,
                    currency=CURRENCY,
                    lines=lines,
                    at=rt.clock.now(),
                    consumer_id=f"cus_ledgertest{i}",
                )

    started = time.perf_counter()
    await asyncio.gather(*(checkout(i) for i in range(tasks)))
    elapsed = time.perf_counter() - started
    for i in range(tasks):
        for lines in confirm if i % 2 else capture:
            scratch.record(CURRENCY, lines)
    entries = tasks // 2 * 3
    print(f"\n{entries} entries in {tasks} concurrent transactions: {entries / elapsed:.0f}/s")

    assert await count_entries(rt, reference) == entries
    after = await totals(rt)
    half = tasks // 2
    assert delta(after, before, A.CONSUMER_RECEIVABLE) == (half * 40_000, half * 10_000)
    assert delta(after, before, A.MERCHANT_AUTHORIZED) == (half * 40_000, half * 40_000)
    assert delta(after, before, A.GATEWAY_CLEARING) == (half * 10_000, 0)
    assert delta(after, before, A.MERCHANT_PAYABLE) == (half * 1_626, half * 40_000)
    assert delta(after, before, A.FEE_REVENUE) == (0, half * 1_626)
    verification = await ledger.verify(rt.db)
    built_in = {c.name: c for c in verification.checks if c.name.startswith("ledger.")}
    assert all(c.ok for c in built_in.values()), built_in


async def test_post_many_writes_every_entry_and_moves_balances_by_their_sum(
    rt: Runtime, scratch: Scratch
) -> None:
    before = await totals(rt)
    reference = ref()
    postings = [
        ledger.Posting(
            kind=f"{TEST_KIND}.many",
            reference_id=reference,
            currency=CURRENCY,
            lines=ledger.consumer_payment(principal=1_000 + i, interest=i, fees=0 if i else 700),
            consumer_id=f"cus_ledgertest{i}",
        )
        for i in range(5)
    ]
    async with rt.db.transaction() as conn:
        ids = await ledger.post_many(conn, postings, at=rt.clock.now())
    for p in postings:
        scratch.record(CURRENCY, p.lines)
    assert len(set(ids)) == 5 and await count_entries(rt, reference) == 5
    async with rt.db.connection() as conn:
        lines = await conn.fetch(
            "SELECT entry_id, line_no, account, side, amount FROM ledger.lines "
            "WHERE entry_id = ANY($1) ORDER BY entry_id, line_no",
            ids,
        )
        entry = await ledger.entry(conn, ids[0])
    assert entry is not None and entry.amount == 1_000 + 700
    assert len(lines) == sum(len(p.lines) for p in postings)
    after = await totals(rt)
    principal = sum(1_000 + i for i in range(5))
    interest = sum(range(5))
    assert delta(after, before, A.GATEWAY_CLEARING) == (principal + interest + 700, 0)
    assert delta(after, before, A.CONSUMER_RECEIVABLE) == (0, principal)
    assert delta(after, before, A.INTEREST_RECEIVABLE) == (0, interest)
    assert delta(after, before, A.FEES_RECEIVABLE) == (0, 700)


async def test_post_many_checks_every_posting_before_writing_any(rt: Runtime) -> None:
    reference = ref()
    good = ledger.Posting(f"{TEST_KIND}.many", reference, CURRENCY, ledger.late_fee(700))
    unbalanced = ledger.Posting(
        f"{TEST_KIND}.many",
        reference,
        CURRENCY,
        [ledger.debit(A.FEES_RECEIVABLE, 700), ledger.credit(A.LATE_FEE_REVENUE, 699)],
    )
    other_currency = ledger.Posting(f"{TEST_KIND}.many", reference, "XXX", ledger.late_fee(1))
    for bad in (unbalanced, other_currency):
        async with rt.db.transaction() as conn:
            with pytest.raises(ledger.PostingError):
                await ledger.post_many(conn, [good, bad], at=rt.clock.now())
    assert await count_entries(rt, reference) == 0
    async with rt.db.transaction() as conn:
        assert await ledger.post_many(conn, [], at=rt.clock.now()) == []
        with pytest.raises(ledger.PostingError):
            await ledger.post_many(conn, [good], at=datetime(2026, 1, 1))  # noqa: DTZ001 (naive on purpose)
