"""Unit tests of the ledger domain: the chart, line and entry validation, the posting recipes.

Every recipe is checked line by line against the signs written in its docstring, and two
properties are checked over random sequences of recipes: the trial balance stays zero in every
currency, and a plan's life keeps consumer_receivable = unpaid principal and merchant_payable =
captured - refunds - fees - paid out.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnpl.kit.money import MAX_AMOUNT
from bnpl.ledger.domain import (
    Account,
    AccountType,
    Line,
    PostingError,
    Side,
    apply_carried_over,
    authorization,
    cancellation,
    capture,
    carry_negative_net,
    charge_off,
    consumer_payment,
    credit,
    debit,
    gateway_sweep,
    interest_accrual,
    late_fee,
    net_by_account,
    payout_funding,
    recovery,
    refund,
    refund_of_written_off,
    release_authorization,
    settlement_payout,
    signed_balance,
    validate_entry,
    waiver,
    written_off_waiver,
)

A = Account
DR = Side.DEBIT
CR = Side.CREDIT


def lines(*spec: tuple[Account, Side, int]) -> list[Line]:
    return [Line(account, side, amount) for account, side, amount in spec]


# --------------------------------------------------------------------------- chart


def test_every_account_has_a_type_and_normal_side() -> None:
    debit_normal = {AccountType.ASSET, AccountType.EXPENSE, AccountType.CONTRA_REVENUE}
    for account in Account:
        expected = DR if account.account_type in debit_normal else CR
        assert account.normal_side is expected, account


@pytest.mark.parametrize(
    ("account", "kind"),
    [
        (A.CONSUMER_RECEIVABLE, AccountType.ASSET),
        (A.INTEREST_RECEIVABLE, AccountType.ASSET),
        (A.FEES_RECEIVABLE, AccountType.ASSET),
        (A.MERCHANT_RECEIVABLE, AccountType.ASSET),
        (A.GATEWAY_CLEARING, AccountType.ASSET),
        (A.PAYOUTS_CLEARING, AccountType.ASSET),
        (A.MERCHANT_AUTHORIZED, AccountType.LIABILITY),
        (A.MERCHANT_PAYABLE, AccountType.LIABILITY),
        (A.FEE_REVENUE, AccountType.REVENUE),
        (A.INTEREST_REVENUE, AccountType.REVENUE),
        (A.LATE_FEE_REVENUE, AccountType.REVENUE),
        (A.WAIVED_INTEREST, AccountType.CONTRA_REVENUE),
        (A.WAIVED_FEES, AccountType.CONTRA_REVENUE),
        (A.BAD_DEBT_EXPENSE, AccountType.EXPENSE),
    ],
)
def test_chart_types(account: Account, kind: AccountType) -> None:
    assert account.account_type is kind


def test_signed_balance_follows_the_normal_side() -> None:
    assert signed_balance(A.CONSUMER_RECEIVABLE, 100, 30) == 70
    assert signed_balance(A.MERCHANT_PAYABLE, 30, 100) == 70
    assert signed_balance(A.MERCHANT_PAYABLE, 100, 30) == -70
    assert signed_balance(A.FEE_REVENUE, 0, 5) == 5
    assert signed_balance(A.BAD_DEBT_EXPENSE, 5, 0) == 5


# --------------------------------------------------------------------------- lines and entries


@pytest.mark.parametrize(
    "amount",
    [0, -1, 1.0, 100.0, True, False, Decimal("1"), Fraction(1), "100", None, MAX_AMOUNT + 1],
)
def test_line_rejects_bad_amounts(amount: object) -> None:
    with pytest.raises(PostingError):
        Line(A.CONSUMER_RECEIVABLE, DR, amount)  # type: ignore[arg-type]


def test_line_rejects_unknown_account_and_side() -> None:
    with pytest.raises(PostingError, match="unknown account"):
        Line("cash_under_the_mattress", DR, 1)  # type: ignore[arg-type]
    with pytest.raises(PostingError, match="side"):
        Line(A.CONSUMER_RECEIVABLE, "left", 1)  # type: ignore[arg-type]
    with pytest.raises(PostingError, match="currency"):
        Line(A.CONSUMER_RECEIVABLE, DR, 1, "XXX")


def test_line_accepts_strings_and_converts_them() -> None:
    line = Line("consumer_receivable", "debit", 5)  # type: ignore[arg-type]
    assert line.account is A.CONSUMER_RECEIVABLE
    assert line.side is DR
    assert line == debit(A.CONSUMER_RECEIVABLE, 5)
    assert credit(A.FEE_REVENUE, 5).side is CR


def test_validate_entry_returns_the_total() -> None:
    assert validate_entry("USD", authorization(40_000)) == 40_000
    assert validate_entry("EUR", capture(captured=40_000, fee=1_626)) == 41_626


def test_validate_entry_rejects_unbalanced() -> None:
    with pytest.raises(PostingError, match="unbalanced"):
        validate_entry(
            "USD", [debit(A.CONSUMER_RECEIVABLE, 100), credit(A.MERCHANT_AUTHORIZED, 99)]
        )
    with pytest.raises(PostingError, match="unbalanced"):
        validate_entry("USD", [debit(A.CONSUMER_RECEIVABLE, 100)])
    with pytest.raises(PostingError, match="needs lines"):
        validate_entry("USD", [])


@pytest.mark.parametrize("currency", ["usd", "JPY", "", "US", None, 840])
def test_validate_entry_rejects_unsupported_currencies(currency: object) -> None:
    with pytest.raises(PostingError, match="currency"):
        validate_entry(currency, authorization(100))  # type: ignore[arg-type]


def test_validate_entry_rejects_mixed_currencies() -> None:
    mixed = [
        Line(A.CONSUMER_RECEIVABLE, DR, 100, "USD"),
        Line(A.MERCHANT_AUTHORIZED, CR, 100, "EUR"),
    ]
    with pytest.raises(PostingError, match="mixed currencies"):
        validate_entry("USD", mixed)
    same = [Line(A.CONSUMER_RECEIVABLE, DR, 100, "USD"), Line(A.MERCHANT_AUTHORIZED, CR, 100)]
    assert validate_entry("USD", same) == 100


def test_validate_entry_rechecks_forged_lines() -> None:
    forged = debit(A.CONSUMER_RECEIVABLE, 100)
    object.__setattr__(forged, "amount", 100.0)
    with pytest.raises(PostingError, match="int"):
        validate_entry("USD", [forged, credit(A.MERCHANT_AUTHORIZED, 100)])
    with pytest.raises(PostingError, match="Line"):
        validate_entry("USD", [("consumer_receivable", "debit", 100)])  # type: ignore[list-item]


def test_validate_entry_bounds_the_line_count() -> None:
    many = [debit(A.GATEWAY_CLEARING, 1), credit(A.CONSUMER_RECEIVABLE, 1)] * 33
    with pytest.raises(PostingError, match="at most"):
        validate_entry("USD", many)


def test_net_by_account_sums_per_account_in_chart_order() -> None:
    entry = [
        credit(A.FEE_REVENUE, 30),
        debit(A.MERCHANT_PAYABLE, 30),
        credit(A.MERCHANT_PAYABLE, 500),
        debit(A.MERCHANT_AUTHORIZED, 500),
    ]
    net = net_by_account(entry)
    assert net == {
        A.MERCHANT_AUTHORIZED: (500, 0),
        A.MERCHANT_PAYABLE: (30, 500),
        A.FEE_REVENUE: (0, 30),
    }
    assert list(net) == [A.MERCHANT_AUTHORIZED, A.MERCHANT_PAYABLE, A.FEE_REVENUE]


# --------------------------------------------------------------------------- recipes


def test_authorization() -> None:
    assert authorization(40_000) == lines(
        (A.CONSUMER_RECEIVABLE, DR, 40_000), (A.MERCHANT_AUTHORIZED, CR, 40_000)
    )


def test_consumer_payment_splits_into_principal_interest_fees() -> None:
    assert consumer_payment(principal=9_000, interest=263, fees=700) == lines(
        (A.GATEWAY_CLEARING, DR, 9_963),
        (A.CONSUMER_RECEIVABLE, CR, 9_000),
        (A.INTEREST_RECEIVABLE, CR, 263),
        (A.FEES_RECEIVABLE, CR, 700),
    )
    # A pay_in_4 installment: no interest, no fees: two lines.
    assert consumer_payment(principal=10_000) == lines(
        (A.GATEWAY_CLEARING, DR, 10_000), (A.CONSUMER_RECEIVABLE, CR, 10_000)
    )


def test_accruals() -> None:
    assert interest_accrual(263) == lines(
        (A.INTEREST_RECEIVABLE, DR, 263), (A.INTEREST_REVENUE, CR, 263)
    )
    assert late_fee(700) == lines((A.FEES_RECEIVABLE, DR, 700), (A.LATE_FEE_REVENUE, CR, 700))


def test_capture_with_fee() -> None:
    # 40,000 at 399 bps + 30: 1,596 + 30 = 1,626.
    assert capture(captured=40_000, fee=1_626) == lines(
        (A.MERCHANT_AUTHORIZED, DR, 40_000),
        (A.MERCHANT_PAYABLE, CR, 40_000),
        (A.MERCHANT_PAYABLE, DR, 1_626),
        (A.FEE_REVENUE, CR, 1_626),
    )
    assert capture(captured=40_000, fee=0) == lines(
        (A.MERCHANT_AUTHORIZED, DR, 40_000), (A.MERCHANT_PAYABLE, CR, 40_000)
    )


def test_release_and_refund_split_applied_and_refunded() -> None:
    assert release_authorization(applied_to_plan=30_000, refunded_to_consumer=10_000) == lines(
        (A.MERCHANT_AUTHORIZED, DR, 40_000),
        (A.CONSUMER_RECEIVABLE, CR, 30_000),
        (A.GATEWAY_CLEARING, CR, 10_000),
    )
    assert refund(applied_to_plan=10_000, refunded_to_consumer=0) == lines(
        (A.MERCHANT_PAYABLE, DR, 10_000), (A.CONSUMER_RECEIVABLE, CR, 10_000)
    )
    assert refund(applied_to_plan=0, refunded_to_consumer=2_500) == lines(
        (A.MERCHANT_PAYABLE, DR, 2_500), (A.GATEWAY_CLEARING, CR, 2_500)
    )


def test_cancellation_returns_paid_interest_and_fees_as_reversals() -> None:
    # Monthly plan of 60,000: installment 1 paid early (9,393 principal + 1,500 interest),
    # then voided: the whole authorization is released, everything paid goes back.
    assert cancellation(
        released_principal=50_607, paid_principal=9_393, paid_interest=1_500, paid_fees=700
    ) == lines(
        (A.MERCHANT_AUTHORIZED, DR, 60_000),
        (A.CONSUMER_RECEIVABLE, CR, 50_607),
        (A.GATEWAY_CLEARING, CR, 9_393),
        (A.INTEREST_REVENUE, DR, 1_500),
        (A.LATE_FEE_REVENUE, DR, 700),
        (A.GATEWAY_CLEARING, CR, 2_200),
    )
    # Nothing paid: the plain release of the authorization.
    assert cancellation(released_principal=40_000, paid_principal=0) == lines(
        (A.MERCHANT_AUTHORIZED, DR, 40_000), (A.CONSUMER_RECEIVABLE, CR, 40_000)
    )


def test_waiver() -> None:
    assert waiver(interest=263, fees=700) == lines(
        (A.WAIVED_INTEREST, DR, 263),
        (A.INTEREST_RECEIVABLE, CR, 263),
        (A.WAIVED_FEES, DR, 700),
        (A.FEES_RECEIVABLE, CR, 700),
    )
    assert waiver(fees=700) == lines((A.WAIVED_FEES, DR, 700), (A.FEES_RECEIVABLE, CR, 700))


def test_charge_off_and_recovery() -> None:
    assert charge_off(principal=30_000, interest=500, fees=700) == lines(
        (A.BAD_DEBT_EXPENSE, DR, 31_200),
        (A.CONSUMER_RECEIVABLE, CR, 30_000),
        (A.INTEREST_RECEIVABLE, CR, 500),
        (A.FEES_RECEIVABLE, CR, 700),
    )
    assert recovery(1_000) == lines(
        (A.GATEWAY_CLEARING, DR, 1_000), (A.BAD_DEBT_EXPENSE, CR, 1_000)
    )


def test_settlement_recipes() -> None:
    assert settlement_payout(38_374) == lines(
        (A.MERCHANT_PAYABLE, DR, 38_374), (A.PAYOUTS_CLEARING, CR, 38_374)
    )
    assert carry_negative_net(1_626) == lines(
        (A.MERCHANT_RECEIVABLE, DR, 1_626), (A.MERCHANT_PAYABLE, CR, 1_626)
    )
    assert apply_carried_over(1_626) == lines(
        (A.MERCHANT_PAYABLE, DR, 1_626), (A.MERCHANT_RECEIVABLE, CR, 1_626)
    )


def test_treasury_recipes() -> None:
    assert gateway_sweep(500) == lines((A.OPERATING_CASH, DR, 500), (A.GATEWAY_CLEARING, CR, 500))
    assert payout_funding(500) == lines((A.PAYOUTS_CLEARING, DR, 500), (A.OPERATING_CASH, CR, 500))


SINGLE_AMOUNT_RECIPES = [
    authorization,
    interest_accrual,
    late_fee,
    recovery,
    settlement_payout,
    carry_negative_net,
    apply_carried_over,
    gateway_sweep,
    payout_funding,
]


@pytest.mark.parametrize("recipe", SINGLE_AMOUNT_RECIPES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("amount", [0, -5, 5.0, True, Decimal("5")])
def test_single_amount_recipes_reject_bad_amounts(recipe: object, amount: object) -> None:
    with pytest.raises(PostingError):
        recipe(amount)  # type: ignore[operator]


@pytest.mark.parametrize(
    "call",
    [
        lambda: consumer_payment(),
        lambda: consumer_payment(principal=0, interest=0, fees=0),
        lambda: consumer_payment(principal=-1, interest=2),
        lambda: consumer_payment(principal=1.5),  # type: ignore[arg-type]
        lambda: consumer_payment(principal=True),
        lambda: capture(captured=0, fee=0),
        lambda: capture(captured=100, fee=-1),
        lambda: capture(captured=100, fee=1.0),  # type: ignore[arg-type]
        lambda: refund(applied_to_plan=0, refunded_to_consumer=0),
        lambda: refund(applied_to_plan=-1, refunded_to_consumer=2),
        lambda: release_authorization(applied_to_plan=10.0, refunded_to_consumer=0),  # type: ignore[arg-type]
        lambda: waiver(),
        lambda: waiver(interest=-1, fees=2),
        lambda: charge_off(),
        lambda: charge_off(principal=False, interest=1),
    ],
)
def test_split_recipes_reject_bad_parts(call: object) -> None:
    with pytest.raises(PostingError):
        call()  # type: ignore[operator]


# --------------------------------------------------------------------------- properties

amounts = st.integers(min_value=1, max_value=10**9)
parts = st.integers(min_value=0, max_value=10**9)


def _at_least_one(values: tuple[int, ...]) -> bool:
    return any(values)


postings = st.one_of(
    st.builds(authorization, amounts),
    st.builds(interest_accrual, amounts),
    st.builds(late_fee, amounts),
    st.builds(recovery, amounts),
    st.builds(settlement_payout, amounts),
    st.builds(carry_negative_net, amounts),
    st.builds(apply_carried_over, amounts),
    st.builds(gateway_sweep, amounts),
    st.builds(payout_funding, amounts),
    st.builds(lambda c, f: capture(captured=c, fee=f), amounts, parts),
    st.tuples(parts, parts, parts)
    .filter(_at_least_one)
    .map(lambda p: consumer_payment(principal=p[0], interest=p[1], fees=p[2])),
    st.tuples(parts, parts, parts)
    .filter(_at_least_one)
    .map(lambda p: charge_off(principal=p[0], interest=p[1], fees=p[2])),
    st.tuples(parts, parts)
    .filter(_at_least_one)
    .map(lambda p: refund(applied_to_plan=p[0], refunded_to_consumer=p[1])),
    st.tuples(parts, parts)
    .filter(_at_least_one)
    .map(lambda p: release_authorization(applied_to_plan=p[0], refunded_to_consumer=p[1])),
    st.tuples(parts, parts).filter(_at_least_one).map(lambda p: waiver(interest=p[0], fees=p[1])),
)
currencies = st.sampled_from(["USD", "EUR", "GBP", "CAD", "AUD"])


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(currencies, postings), min_size=1, max_size=40))
def test_any_sequence_of_recipes_keeps_the_trial_balance_at_zero(
    journal: list[tuple[str, list[Line]]],
) -> None:
    debits: dict[str, int] = defaultdict(int)
    credits: dict[str, int] = defaultdict(int)
    per_account: dict[tuple[str, Account], int] = defaultdict(int)
    for currency, entry in journal:
        total = validate_entry(currency, entry)
        assert total > 0
        for line in entry:
            assert isinstance(line.amount, int) and line.amount > 0
            if line.side is DR:
                debits[currency] += line.amount
                per_account[currency, line.account] += line.amount
            else:
                credits[currency] += line.amount
                per_account[currency, line.account] -= line.amount
    assert debits == credits
    for currency in debits:
        assert sum(v for (c, _), v in per_account.items() if c == currency) == 0


@settings(max_examples=200, deadline=None)
@given(
    principal=st.integers(min_value=1_000, max_value=200_000),
    fee_bps=st.integers(min_value=0, max_value=1_000),
    ops=st.lists(
        st.tuples(st.sampled_from(["pay", "refund", "late_fee", "settle"]), st.integers(1, 10**6)),
        max_size=25,
    ),
    capture_share=st.integers(min_value=1, max_value=100),
)
def test_a_plans_life_keeps_receivable_and_payable_invariants(
    principal: int, fee_bps: int, ops: list[tuple[str, int]], capture_share: int
) -> None:
    """The recipes keep DOMAIN.md's ledger invariants over a simplified plan's life:
    consumer_receivable = unpaid principal, fees_receivable = unpaid fees,
    merchant_payable = captured - refunds - fees - paid out (a negative net carried over sits in
    merchant_receivable until the next settlement nets it)."""
    balance: dict[Account, int] = defaultdict(int)

    def book(entry: list[Line]) -> None:
        validate_entry("USD", entry)
        for line in entry:
            sign = 1 if line.side is line.account.normal_side else -1
            balance[line.account] += sign * line.amount

    unpaid, fees_unpaid, net_owed, carried = principal, 0, 0, 0
    book(authorization(principal))
    captured = max(1, principal * capture_share // 100)
    if captured < principal:  # partial capture: release the remainder first
        book(release_authorization(applied_to_plan=principal - captured, refunded_to_consumer=0))
        unpaid -= principal - captured
    fee = (captured * fee_bps + 5_000) // 10_000 + 30
    book(capture(captured=captured, fee=fee))
    net_owed += captured - fee
    refundable = captured
    for op, amount in ops:
        if op == "pay" and unpaid + fees_unpaid:
            pay_fees = min(fees_unpaid, amount)
            pay_principal = min(unpaid, amount - pay_fees)
            if pay_fees + pay_principal:
                book(consumer_payment(principal=pay_principal, fees=pay_fees))
                unpaid -= pay_principal
                fees_unpaid -= pay_fees
        elif op == "refund" and refundable:
            value = min(refundable, amount)
            applied = min(unpaid, value)
            book(refund(applied_to_plan=applied, refunded_to_consumer=value - applied))
            unpaid -= applied
            refundable -= value
            net_owed -= value
        elif op == "late_fee" and unpaid:
            book(late_fee(700))
            fees_unpaid += 700
        elif op == "settle":
            if carried:  # last settlement's shortfall is netted into this one
                book(apply_carried_over(carried))
                net_owed -= carried
                carried = 0
            if net_owed > 0:
                book(settlement_payout(net_owed))
            elif net_owed < 0:
                book(carry_negative_net(-net_owed))
                carried = -net_owed
            net_owed = 0
        assert balance[A.CONSUMER_RECEIVABLE] == unpaid
        assert balance[A.FEES_RECEIVABLE] == fees_unpaid
        assert balance[A.MERCHANT_PAYABLE] == net_owed
        assert balance[A.MERCHANT_RECEIVABLE] == carried
        assert balance[A.MERCHANT_AUTHORIZED] == 0


def test_a_charged_off_plans_refund_and_waiver_go_against_the_write_off() -> None:
    assert refund_of_written_off(applied_to_plan=450, refunded_to_consumer=250) == lines(
        (A.MERCHANT_PAYABLE, DR, 700),
        (A.BAD_DEBT_EXPENSE, CR, 450),
        (A.GATEWAY_CLEARING, CR, 250),
    )
    assert refund_of_written_off(
        applied_to_plan=300, refunded_to_consumer=0, before_capture=True
    ) == lines((A.MERCHANT_AUTHORIZED, DR, 300), (A.BAD_DEBT_EXPENSE, CR, 300))
    assert written_off_waiver(interest=263, fees=700) == lines(
        (A.BAD_DEBT_EXPENSE, CR, 963),
        (A.WAIVED_INTEREST, DR, 263),
        (A.WAIVED_FEES, DR, 700),
    )
    with pytest.raises(PostingError):
        written_off_waiver()
