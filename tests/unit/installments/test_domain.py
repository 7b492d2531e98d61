"""Unit tests of the installments domain: schedules, payments, refunds, late fees.

Expected schedules are worked examples checked against an independent ``Decimal``
reference (``_reference_monthly`` below) and against published amortization figures
(1,000.00 at 19.99% over 12 months is 92.63 a month; 2,500.00 at 15% over 6 months
is 435.08 a month).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bnpl.installments.domain import (
    Installment,
    InstallmentAllocation,
    InstallmentStatus,
    PlanKind,
    PlanStatus,
    ScheduledInstallment,
    add_months,
    allocate_payment,
    allocate_refund,
    assess_late_fees,
    build_schedule,
    days_past_due,
    installment_amount_preview,
    is_charge_off_due,
    late_fee_cap,
    late_fee_for,
    next_installment_amount,
    outstanding_balance,
    overdue_amount,
    pay_off,
    payoff_amount,
    plan_principal,
    plan_status_for,
    round_half_up,
    start_installments,
    unpaid_principal,
)

SCHEDULED = InstallmentStatus.SCHEDULED
PAID = InstallmentStatus.PAID
LATE = InstallmentStatus.LATE
CANCELED = InstallmentStatus.CANCELED

property_settings = settings(max_examples=200, deadline=None, database=None)


def _reference_monthly(principal: int, apr_bps: int, count: int) -> list[tuple[int, int]]:
    """(principal, interest) per installment, computed with Decimal, not Fraction.

    Interest is one exact-when-terminating division of integers, so ties (x.5) are seen
    as ties; ``balance * rate`` with a rounded ``rate`` would miss them (1/48 a month
    at 2,500 bps is not a finite decimal).
    """
    one = Decimal(1)
    with localcontext() as ctx:
        ctx.prec = 60
        rate = Decimal(apr_bps) / Decimal(10_000) / Decimal(12)
        if rate == 0:
            regular = principal // count
            return [(principal - (count - 1) * regular, 0)] + [(regular, 0)] * (count - 1)
        payment = (Decimal(principal) * rate / (one - (one + rate) ** -count)).quantize(
            one, rounding=ROUND_HALF_UP
        )
        balance = Decimal(principal)
        rows: list[tuple[int, int]] = []
        for k in range(1, count + 1):
            interest = (balance * apr_bps / Decimal(120_000)).quantize(one, rounding=ROUND_HALF_UP)
            part = balance if k == count else payment - interest
            rows.append((int(part), int(interest)))
            balance -= part
        return rows


def _rows(schedule: list[ScheduledInstallment]) -> list[tuple[int, int]]:
    return [(s.principal, s.interest) for s in schedule]


# --------------------------------------------------------------------------- plan kinds


def test_plan_kind_properties_follow_the_plan_table() -> None:
    assert [k.value for k in PlanKind] == ["pay_in_4", "monthly_6", "monthly_12"]
    assert PlanKind.PAY_IN_4.installment_count == 4
    assert PlanKind.MONTHLY_6.installment_count == 6
    assert PlanKind.MONTHLY_12.installment_count == 12
    assert (PlanKind.PAY_IN_4.min_amount, PlanKind.PAY_IN_4.max_amount) == (1_000, 200_000)
    assert (PlanKind.MONTHLY_6.min_amount, PlanKind.MONTHLY_6.max_amount) == (5_000, 1_000_000)
    assert (PlanKind.MONTHLY_12.min_amount, PlanKind.MONTHLY_12.max_amount) == (5_000, 1_000_000)
    assert PlanKind.PAY_IN_4.has_down_payment
    assert not PlanKind.MONTHLY_6.has_down_payment
    assert not PlanKind.MONTHLY_12.has_down_payment
    assert not PlanKind.PAY_IN_4.charges_interest
    assert PlanKind.MONTHLY_12.charges_interest
    assert PlanKind("monthly_6") is PlanKind.MONTHLY_6


def test_amount_range_bounds_are_inclusive() -> None:
    assert PlanKind.PAY_IN_4.allows_amount(1_000)
    assert PlanKind.PAY_IN_4.allows_amount(200_000)
    assert not PlanKind.PAY_IN_4.allows_amount(999)
    assert not PlanKind.PAY_IN_4.allows_amount(200_001)
    assert not PlanKind.MONTHLY_12.allows_amount(4_999)
    assert PlanKind.MONTHLY_12.allows_amount(1_000_000)


# --------------------------------------------------------------------------- arithmetic


def test_round_half_up_sends_ties_up() -> None:
    assert round_half_up(Fraction(5, 2)) == 3
    assert round_half_up(Fraction(3, 2)) == 2
    assert round_half_up(Fraction(7, 3)) == 2
    assert round_half_up(Fraction(8, 3)) == 3
    assert round_half_up(Fraction(4)) == 4
    assert round_half_up(Fraction(0)) == 0
    assert round_half_up(Fraction(-5, 2)) == -2


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2025, 1, 31), 1, date(2025, 2, 28)),
        (date(2024, 1, 31), 1, date(2024, 2, 29)),
        (date(2025, 1, 31), 2, date(2025, 3, 31)),
        (date(2025, 1, 31), 3, date(2025, 4, 30)),
        (date(2025, 1, 31), 12, date(2026, 1, 31)),
        (date(2025, 11, 30), 3, date(2026, 2, 28)),
        (date(2023, 2, 28), 12, date(2024, 2, 28)),
        (date(2024, 2, 29), 12, date(2025, 2, 28)),
        (date(2025, 12, 15), 1, date(2026, 1, 15)),
    ],
)
def test_add_months_clamps_to_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected


# --------------------------------------------------------------------------- schedules


def test_pay_in_4_even_amount() -> None:
    d = date(2026, 11, 25)
    assert build_schedule(PlanKind.PAY_IN_4, 40_000, 0, d) == [
        ScheduledInstallment(1, date(2026, 11, 25), 10_000, 0),
        ScheduledInstallment(2, date(2026, 12, 9), 10_000, 0),
        ScheduledInstallment(3, date(2026, 12, 23), 10_000, 0),
        ScheduledInstallment(4, date(2027, 1, 6), 10_000, 0),
    ]


@pytest.mark.parametrize(
    ("principal", "expected"),
    [
        (10_001, [2_501, 2_500, 2_500, 2_500]),
        (1_003, [253, 250, 250, 250]),
        (1_000, [250, 250, 250, 250]),
        (199_999, [50_002, 49_999, 49_999, 49_999]),
    ],
)
def test_pay_in_4_remainder_goes_to_the_first(principal: int, expected: list[int]) -> None:
    schedule = build_schedule(PlanKind.PAY_IN_4, principal, 0, date(2026, 1, 1))
    assert [s.principal for s in schedule] == expected
    assert all(s.interest == 0 for s in schedule)


def test_pay_in_4_ignores_apr() -> None:
    d = date(2026, 3, 1)
    assert build_schedule(PlanKind.PAY_IN_4, 10_001, 2_999, d) == build_schedule(
        PlanKind.PAY_IN_4, 10_001, 0, d
    )


def test_monthly_12_at_1999_bps_on_100000() -> None:
    schedule = build_schedule(PlanKind.MONTHLY_12, 100_000, 1_999, date(2026, 1, 15))
    assert _rows(schedule) == [
        (7_597, 1_666),
        (7_724, 1_539),
        (7_852, 1_411),
        (7_983, 1_280),
        (8_116, 1_147),
        (8_251, 1_012),
        (8_389, 874),
        (8_529, 734),
        (8_671, 592),
        (8_815, 448),
        (8_962, 301),
        (9_111, 152),
    ]
    # Every installment but the last is the amortized payment A = 9,263.
    assert {s.amount for s in schedule[:-1]} == {9_263}
    assert schedule[-1].amount == 9_263
    assert sum(s.interest for s in schedule) == 11_156
    assert [s.due_date for s in schedule] == [date(2026, m, 15) for m in range(2, 13)] + [
        date(2027, 1, 15)
    ]


def test_monthly_12_at_1999_bps_on_an_odd_principal() -> None:
    schedule = build_schedule(PlanKind.MONTHLY_12, 123_457, 1_999, date(2026, 1, 15))
    assert _rows(schedule) == [
        (9_379, 2_057),
        (9_536, 1_900),
        (9_695, 1_741),
        (9_856, 1_580),
        (10_020, 1_416),
        (10_187, 1_249),
        (10_357, 1_079),
        (10_529, 907),
        (10_705, 731),
        (10_883, 553),
        (11_064, 372),
        (11_246, 187),
    ]
    assert {s.amount for s in schedule[:-1]} == {11_436}
    assert schedule[-1].amount == 11_433  # the last one absorbs the rounding
    assert sum(s.principal for s in schedule) == 123_457


def test_monthly_6_at_1500_bps_uses_an_exact_monthly_rate() -> None:
    # r = 0.0125 exactly; A = 43,508 (2,500.00 at 15% over 6 months is 435.08).
    schedule = build_schedule(PlanKind.MONTHLY_6, 250_000, 1_500, date(2026, 5, 10))
    assert _rows(schedule) == [
        (40_383, 3_125),
        (40_888, 2_620),
        (41_399, 2_109),
        (41_916, 1_592),
        (42_440, 1_068),
        (42_974, 537),
    ]


def test_monthly_interest_ties_round_up() -> None:
    # r = 1200 bps / 12 = 1% a month: 10,050 * 1% = 100.5 -> 101.
    schedule = build_schedule(PlanKind.MONTHLY_6, 10_050, 1_200, date(2026, 1, 1))
    assert schedule[0].interest == 101


def test_monthly_interest_ties_round_up_with_a_non_decimal_rate() -> None:
    # r = 2500 / 120000 = 1/48; installment 4's balance is 3,864 and 3,864 / 48 = 80.5.
    schedule = build_schedule(PlanKind.MONTHLY_12, 5_000, 2_500, date(2026, 1, 1))
    balances = [5_000 - sum(s.principal for s in schedule[:k]) for k in range(12)]
    assert balances[3] == 3_864
    assert schedule[3] == ScheduledInstallment(4, date(2026, 5, 1), principal=394, interest=81)
    assert {s.amount for s in schedule[:-1]} == {475}
    assert schedule[-1] == ScheduledInstallment(12, date(2027, 1, 1), principal=469, interest=10)


def test_monthly_6_at_zero_apr_puts_the_remainder_on_the_first() -> None:
    schedule = build_schedule(PlanKind.MONTHLY_6, 10_001, 0, date(2026, 1, 1))
    assert _rows(schedule) == [(1_671, 0)] + [(1_666, 0)] * 5
    assert sum(s.principal for s in schedule) == 10_001


@pytest.mark.parametrize(
    ("authorized", "expected"),
    [
        (
            date(2025, 1, 31),  # not a leap year
            [
                date(2025, 2, 28),
                date(2025, 3, 31),
                date(2025, 4, 30),
                date(2025, 5, 31),
                date(2025, 6, 30),
                date(2025, 7, 31),
                date(2025, 8, 31),
                date(2025, 9, 30),
                date(2025, 10, 31),
                date(2025, 11, 30),
                date(2025, 12, 31),
                date(2026, 1, 31),
            ],
        ),
        (
            date(2024, 1, 31),  # leap year
            [
                date(2024, 2, 29),
                date(2024, 3, 31),
                date(2024, 4, 30),
                date(2024, 5, 31),
                date(2024, 6, 30),
                date(2024, 7, 31),
                date(2024, 8, 31),
                date(2024, 9, 30),
                date(2024, 10, 31),
                date(2024, 11, 30),
                date(2024, 12, 31),
                date(2025, 1, 31),
            ],
        ),
    ],
)
def test_monthly_due_dates_are_computed_from_the_authorization_date(
    authorized: date, expected: list[date]
) -> None:
    schedule = build_schedule(PlanKind.MONTHLY_12, 100_000, 1_999, authorized)
    assert [s.due_date for s in schedule] == expected
    assert [s.seq for s in schedule] == list(range(1, 13))


def test_monthly_6_due_dates_from_month_end() -> None:
    schedule = build_schedule(PlanKind.MONTHLY_6, 60_000, 0, date(2025, 8, 31))
    assert [s.due_date for s in schedule] == [
        date(2025, 9, 30),
        date(2025, 10, 31),
        date(2025, 11, 30),
        date(2025, 12, 31),
        date(2026, 1, 31),
        date(2026, 2, 28),
    ]


@pytest.mark.parametrize("kind", list(PlanKind))
@pytest.mark.parametrize(("principal", "apr_bps"), [(0, 0), (-1, 0), (10_000, -1)])
def test_build_schedule_rejects_bad_terms(kind: PlanKind, principal: int, apr_bps: int) -> None:
    with pytest.raises(ValueError):
        build_schedule(kind, principal, apr_bps, date(2026, 1, 1))
    with pytest.raises(ValueError):
        installment_amount_preview(kind, principal, apr_bps)


def test_installment_amount_preview() -> None:
    assert installment_amount_preview(PlanKind.PAY_IN_4, 40_000, 0) == 10_000
    assert installment_amount_preview(PlanKind.PAY_IN_4, 10_003, 1_999) == 2_500
    assert installment_amount_preview(PlanKind.MONTHLY_6, 10_001, 0) == 1_666
    assert installment_amount_preview(PlanKind.MONTHLY_12, 100_000, 1_999) == 9_263
    assert installment_amount_preview(PlanKind.MONTHLY_6, 250_000, 1_500) == 43_508


@property_settings
@given(
    kind=st.sampled_from(list(PlanKind)),
    principal=st.integers(min_value=1, max_value=5_000_000),
    apr_bps=st.integers(min_value=0, max_value=100_000),
    authorized=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 12, 31)),
)
def test_schedule_properties(
    kind: PlanKind, principal: int, apr_bps: int, authorized: date
) -> None:
    schedule = build_schedule(kind, principal, apr_bps, authorized)
    assert len(schedule) == kind.installment_count
    assert [s.seq for s in schedule] == list(range(1, kind.installment_count + 1))
    assert sum(s.principal for s in schedule) == principal
    assert all(s.principal >= 0 and s.interest >= 0 for s in schedule)
    assert all(a.due_date < b.due_date for a, b in pairwise(schedule))
    if kind is PlanKind.PAY_IN_4:
        assert schedule[0].due_date == authorized
        assert all(s.interest == 0 for s in schedule)
    else:
        assert schedule[0].due_date > authorized
        assert all(s.due_date.day <= authorized.day for s in schedule)


@property_settings
@given(
    kind=st.sampled_from([PlanKind.MONTHLY_6, PlanKind.MONTHLY_12]),
    principal=st.integers(min_value=5_000, max_value=1_000_000),
    apr_bps=st.integers(min_value=0, max_value=3_600),
)
def test_monthly_schedule_matches_the_decimal_reference(
    kind: PlanKind, principal: int, apr_bps: int
) -> None:
    schedule = build_schedule(kind, principal, apr_bps, date(2026, 1, 31))
    assert _rows(schedule) == _reference_monthly(principal, apr_bps, kind.installment_count)
    preview = installment_amount_preview(kind, principal, apr_bps)
    assert {s.amount for s in schedule[1:-1]} == {preview}


# --------------------------------------------------------------------------- state helpers


def _plan(*installments: Installment) -> tuple[Installment, ...]:
    return installments


def test_installment_rejects_inconsistent_state() -> None:
    with pytest.raises(ValueError):
        Installment(1, date(2026, 1, 1), principal=100, interest=0, principal_paid=101)
    with pytest.raises(ValueError):
        Installment(1, date(2026, 1, 1), principal=100, interest=5, interest_paid=-1)
    with pytest.raises(ValueError):
        Installment(1, date(2026, 1, 1), principal=100, interest=0, status=PAID)
    with pytest.raises(ValueError):
        Installment(1, date(2026, 1, 1), principal=100, interest=0, status=CANCELED)


def test_balances_of_a_pay_in_4_plan_after_the_down_payment() -> None:
    d = date(2026, 11, 25)
    plan = start_installments(build_schedule(PlanKind.PAY_IN_4, 40_000, 0, d))
    plan = allocate_payment(plan, 10_000).installments
    assert [i.status for i in plan] == [PAID, SCHEDULED, SCHEDULED, SCHEDULED]
    assert plan_principal(plan) == 40_000
    assert unpaid_principal(plan) == 30_000
    assert outstanding_balance(plan) == 30_000
    assert next_installment_amount(plan) == 10_000
    assert overdue_amount(plan, d) == 0
    assert overdue_amount(plan, d + timedelta(days=14)) == 10_000
    assert plan[0].amount_due == plan[0].amount_paid == 10_000


# --------------------------------------------------------------------------- payments


def _monthly_plan() -> tuple[Installment, ...]:
    return start_installments(build_schedule(PlanKind.MONTHLY_6, 250_000, 1_500, date(2026, 1, 1)))


def test_payment_goes_to_fees_then_interest_then_principal() -> None:
    plan = _plan(
        Installment(1, date(2026, 2, 1), principal=1_000, interest=100, fees=700, status=LATE),
        Installment(2, date(2026, 3, 1), principal=1_000, interest=80),
    )
    allocation = allocate_payment(plan, 750)
    assert allocation.parts == (InstallmentAllocation(1, fees=700, interest=50, principal=0),)
    assert allocation.unapplied == 0
    first = allocation.installments[0]
    assert (first.fees_paid, first.interest_paid, first.principal_paid) == (700, 50, 0)
    assert first.status is LATE

    allocation = allocate_payment(allocation.installments, 1_100)
    assert allocation.parts == (
        InstallmentAllocation(1, fees=0, interest=50, principal=1_000),
        InstallmentAllocation(2, fees=0, interest=50, principal=0),
    )
    assert [i.status for i in allocation.installments] == [PAID, SCHEDULED]


def test_payment_goes_to_the_oldest_unpaid_installment_first() -> None:
    plan = _monthly_plan()
    # Paying in any input order: the installments are ordered by due date.
    allocation = allocate_payment(tuple(reversed(plan)), 43_508 + 10)
    by_seq = {i.seq: i for i in allocation.installments}
    assert by_seq[1].status is PAID
    assert by_seq[2].interest_paid == 10
    assert [p.seq for p in allocation.parts] == [1, 2]
    assert [i.seq for i in allocation.installments] == [6, 5, 4, 3, 2, 1]


def test_payment_beyond_the_balance_is_left_unapplied() -> None:
    plan = _monthly_plan()
    total = outstanding_balance(plan)
    allocation = allocate_payment(plan, total + 123)
    assert allocation.applied == total
    assert allocation.unapplied == 123
    assert all(i.status is PAID for i in allocation.installments)
    assert outstanding_balance(allocation.installments) == 0
    assert plan_status_for(allocation.installments, PlanStatus.ACTIVE) is PlanStatus.PAID_OFF


def test_payment_rejects_negative_amount() -> None:
    with pytest.raises(ValueError):
        allocate_payment(_monthly_plan(), -1)


# --------------------------------------------------------------------------- payoff


def test_payoff_waives_interest_of_future_installments_only() -> None:
    plan = _monthly_plan()
    plan = allocate_payment(plan, 43_508).installments  # installment 1 paid
    plan = assess_late_fees(plan, date(2026, 3, 11), 250_000, 0).installments  # #2 late
    assert plan[1].status is LATE and plan[1].fees == 700
    today = date(2026, 3, 15)
    expected = (250_000 - 40_383) + 700 + 2_620  # all principal, the fee, #2's interest
    assert payoff_amount(plan, today) == expected
    result = pay_off(plan, today)
    assert result.applied == expected
    assert result.unapplied == 0
    assert result.waived_interest == 2_109 + 1_592 + 1_068 + 537
    assert all(i.status is PAID for i in result.installments)
    assert outstanding_balance(result.installments) == 0
    assert plan_principal(result.installments) == 250_000


def test_payoff_on_the_due_date_includes_that_installments_interest() -> None:
    plan = _monthly_plan()
    assert payoff_amount(plan, date(2026, 2, 1)) == 250_000 + 3_125
    assert payoff_amount(plan, date(2026, 1, 31)) == 250_000


# --------------------------------------------------------------------------- refunds


def _pay_in_4_after_down_payment() -> tuple[Installment, ...]:
    plan = start_installments(build_schedule(PlanKind.PAY_IN_4, 40_000, 0, date(2026, 1, 1)))
    return allocate_payment(plan, 10_000).installments


def test_refund_reduces_unpaid_principal_from_the_last_installment() -> None:
    result = allocate_refund(_pay_in_4_after_down_payment(), 15_000)
    assert result.applied_to_plan == 15_000
    assert result.refunded_to_consumer == 0
    assert [(i.principal, i.status) for i in result.installments] == [
        (10_000, PAID),
        (10_000, SCHEDULED),
        (5_000, SCHEDULED),
        (0, CANCELED),
    ]
    assert result.canceled == (4,)
    assert plan_principal(result.installments) == 25_000


def test_full_refund_pays_back_what_the_consumer_paid() -> None:
    result = allocate_refund(_pay_in_4_after_down_payment(), 40_000)
    assert result.applied_to_plan == 30_000
    assert result.refunded_to_consumer == 10_000
    assert [i.status for i in result.installments] == [PAID, CANCELED, CANCELED, CANCELED]
    assert result.canceled == (2, 3, 4)
    assert outstanding_balance(result.installments) == 0
    status = plan_status_for(result.installments, PlanStatus.ACTIVE, fully_refunded=True)
    assert status is PlanStatus.REFUNDED


def test_refund_waives_unpaid_interest_and_fees_of_canceled_installments() -> None:
    plan = _plan(
        Installment(1, date(2026, 2, 1), 1_000, 100, fees=700, status=LATE),
        Installment(2, date(2026, 3, 1), 1_000, 80),
        Installment(3, date(2026, 4, 1), 1_000, 60),
    )
    result = allocate_refund(plan, 2_500)
    assert result.applied_to_plan == 2_500
    assert [(i.principal, i.interest, i.fees, i.status) for i in result.installments] == [
        (500, 100, 700, LATE),  # only partly reduced: keeps interest, fee and status
        (0, 0, 0, CANCELED),
        (0, 0, 0, CANCELED),
    ]
    assert result.waived_interest == 140
    assert result.waived_fees == 0
    assert plan_status_for(result.installments, PlanStatus.DELINQUENT) is PlanStatus.DELINQUENT

    result = allocate_refund(result.installments, 500)
    assert result.waived_interest == 100
    assert result.waived_fees == 700
    assert result.installments[0].status is CANCELED
    assert plan_principal(result.installments) == 0
    assert plan_status_for(result.installments, PlanStatus.DELINQUENT) is PlanStatus.REFUNDED


def test_refund_settles_a_partly_paid_installment_as_paid() -> None:
    plan = _plan(
        Installment(1, date(2026, 2, 1), 1_000, 100, fees=700, status=LATE),
        Installment(2, date(2026, 3, 1), 1_000, 80),
    )
    plan = allocate_payment(plan, 700 + 100 + 300).installments
    result = allocate_refund(plan, 2_000)
    assert result.applied_to_plan == 1_000 + 700
    assert result.refunded_to_consumer == 300
    first, second = result.installments
    # What was paid stays booked (the paid late fee is not returned); nothing more is owed.
    assert (first.principal, first.interest, first.fees, first.status) == (300, 100, 700, PAID)
    assert (second.principal, second.interest, second.status) == (0, 0, CANCELED)
    assert result.canceled == (2,)
    assert plan_principal(result.installments) == 300


def test_refund_rejects_amounts_outside_the_plan() -> None:
    plan = _pay_in_4_after_down_payment()
    with pytest.raises(ValueError):
        allocate_refund(plan, -1)
    with pytest.raises(ValueError):
        allocate_refund(plan, 40_001)
    assert allocate_refund(plan, 0).installments == plan


def test_partial_capture_releases_like_a_refund_before_any_payment() -> None:
    plan = start_installments(build_schedule(PlanKind.MONTHLY_6, 60_000, 0, date(2026, 1, 1)))
    result = allocate_refund(plan, 25_000)  # captured 35,000 of 60,000
    assert [i.principal for i in result.installments] == [10_000, 10_000, 10_000, 5_000, 0, 0]
    assert result.refunded_to_consumer == 0
    assert plan_principal(result.installments) == 35_000


# --------------------------------------------------------------------------- late fees


def test_late_fee_is_cut_to_fit_the_cap() -> None:
    assert late_fee_cap(10_000) == 2_500
    assert late_fee_cap(10_003) == 2_500  # rounded down: the cap is never exceeded
    assert late_fee_for(10_000, 0) == 700
    assert late_fee_for(10_000, 2_100) == 400
    assert late_fee_for(10_000, 2_500) == 0
    assert late_fee_for(10_000, 3_000) == 0
    assert late_fee_for(1_000, 0) == 250
    assert late_fee_for(100_000, 0, fee=1_500, cap_bps=1_000) == 1_500
    with pytest.raises(ValueError):
        late_fee_for(10_000, -1)


def test_assess_late_fees_after_the_grace_period() -> None:
    plan = start_installments(build_schedule(PlanKind.PAY_IN_4, 10_000, 0, date(2026, 1, 1)))
    plan = allocate_payment(plan, 2_500).installments
    due = date(2026, 1, 15)
    assessment = assess_late_fees(plan, due + timedelta(days=9), 10_000, 0)
    assert assessment.newly_late == ()
    assert assessment.installments == plan

    assessment = assess_late_fees(plan, due + timedelta(days=10), 10_000, 0)
    assert assessment.newly_late == (2,)
    assert assessment.fees_charged == 700
    assert assessment.installments[1].status is LATE
    assert assessment.installments[1].fees == 700
    assert plan_status_for(assessment.installments, PlanStatus.ACTIVE) is PlanStatus.DELINQUENT

    # Once late, never a second fee.
    again = assess_late_fees(assessment.installments, due + timedelta(days=40), 10_000, 700)
    assert again.newly_late == (3, 4)
    assert again.fees_charged == 1_400
    assert [i.fees for i in again.installments] == [0, 700, 700, 700]

    # The cap (2,500) is reached on a later fee, which is cut.
    capped = assess_late_fees(assessment.installments, due + timedelta(days=40), 10_000, 1_500)
    assert [i.fees for i in capped.installments] == [0, 700, 700, 300]


def test_plan_returns_to_active_when_no_installment_is_late() -> None:
    plan = _plan(
        Installment(1, date(2026, 2, 1), 1_000, 0, fees=700, status=LATE),
        Installment(2, date(2026, 3, 1), 1_000, 0),
    )
    assert plan_status_for(plan, PlanStatus.DELINQUENT) is PlanStatus.DELINQUENT
    paid = allocate_payment(plan, 1_700).installments
    assert plan_status_for(paid, PlanStatus.DELINQUENT) is PlanStatus.ACTIVE
    assert plan_status_for(paid, PlanStatus.CHARGED_OFF) is PlanStatus.CHARGED_OFF


def test_days_past_due_and_charge_off() -> None:
    plan = _plan(
        Installment(1, date(2026, 2, 1), 1_000, 0, principal_paid=1_000, status=PAID),
        Installment(2, date(2026, 3, 1), 1_000, 0, status=LATE),
        Installment(3, date(2026, 4, 1), 1_000, 0, status=LATE),
    )
    assert days_past_due(plan, date(2026, 3, 1)) == 0
    assert days_past_due(plan, date(2026, 3, 11)) == 10
    assert not is_charge_off_due(plan, date(2026, 3, 1) + timedelta(days=119))
    assert is_charge_off_due(plan, date(2026, 3, 1) + timedelta(days=120))
    assert days_past_due(_plan(replace(plan[0])), date(2030, 1, 1)) == 0


# --------------------------------------------------------------------------- properties


@st.composite
def _plans(draw: st.DrawFn) -> tuple[PlanKind, int, tuple[Installment, ...]]:
    kind = draw(st.sampled_from(list(PlanKind)))
    principal = draw(st.integers(min_value=kind.min_amount, max_value=kind.max_amount))
    apr_bps = draw(st.integers(min_value=0, max_value=3_600))
    authorized = draw(st.dates(min_value=date(2024, 1, 1), max_value=date(2030, 12, 31)))
    schedule = build_schedule(kind, principal, apr_bps, authorized)
    return kind, principal, start_installments(schedule)


def _assert_well_formed(plan: tuple[Installment, ...]) -> None:
    for i in plan:
        for value in (i.principal, i.interest, i.fees, i.unpaid_amount):
            assert value >= 0
        if i.status is CANCELED:
            assert i.principal == 0
    assert outstanding_balance(plan) == sum(
        i.amount_due - i.amount_paid for i in plan if i.status is not CANCELED
    )


_operations = st.lists(
    st.tuples(
        st.sampled_from(["pay", "refund", "advance", "payoff"]),
        st.integers(min_value=0, max_value=1_200_000),
    ),
    max_size=12,
)


@property_settings
@given(plan=_plans(), operations=_operations)
def test_any_sequence_of_payments_refunds_and_late_fees_keeps_the_invariants(
    plan: tuple[PlanKind, int, tuple[Installment, ...]],
    operations: list[tuple[str, int]],
) -> None:
    kind, captured, installments = plan
    today = installments[0].due_date - timedelta(days=1)
    expected_principal = captured
    refunded = 0
    refunded_to_consumer = 0
    principal_paid = 0
    late_fees = 0
    cap = late_fee_cap(captured)
    for operation, amount in operations:
        before = installments
        if operation == "pay":
            allocation = allocate_payment(installments, amount)
            installments = allocation.installments
            assert allocation.applied + allocation.unapplied == amount
            assert allocation.applied == min(amount, outstanding_balance(before))
            assert outstanding_balance(installments) == outstanding_balance(before) - (
                allocation.applied
            )
            unpaid_before = {i.seq: i for i in before}
            for part in allocation.parts:
                old = unpaid_before[part.seq]
                assert part.fees <= old.unpaid_fees
                assert part.interest <= old.unpaid_interest
                assert part.principal <= old.unpaid_principal
            principal_paid += sum(p.principal for p in allocation.parts)
        elif operation == "refund":
            amount = min(amount, captured - refunded)
            result = allocate_refund(installments, amount)
            installments = result.installments
            assert result.applied_to_plan + result.refunded_to_consumer == amount
            assert result.applied_to_plan == min(amount, unpaid_principal(before))
            refunded += amount
            refunded_to_consumer += result.refunded_to_consumer
            expected_principal -= result.applied_to_plan
            # The consumer never gets back more principal than they paid.
            assert refunded_to_consumer <= principal_paid
        elif operation == "advance":
            today += timedelta(days=amount % 60)
            assessment = assess_late_fees(installments, today, captured, late_fees)
            installments = assessment.installments
            late_fees += assessment.fees_charged
            assert late_fees <= cap
        else:
            quote = payoff_amount(installments, today)
            payoff = pay_off(installments, today)
            installments = payoff.installments
            assert payoff.applied == quote
            assert outstanding_balance(installments) == 0
            principal_paid += sum(p.principal for p in payoff.parts)
        assert [i.seq for i in installments] == [i.seq for i in before]
        assert plan_principal(installments) == expected_principal
        assert unpaid_principal(installments) <= expected_principal
        _assert_well_formed(installments)
    assert len(installments) == kind.installment_count


@property_settings
@given(
    plan=_plans(),
    amount=st.integers(min_value=0, max_value=3_000_000),
    today_offset=st.integers(min_value=-10, max_value=400),
)
def test_payoff_never_exceeds_the_outstanding_balance(
    plan: tuple[PlanKind, int, tuple[Installment, ...]], amount: int, today_offset: int
) -> None:
    _, principal, installments = plan
    installments = allocate_payment(installments, amount % (principal + 1)).installments
    today = installments[0].due_date + timedelta(days=today_offset)
    quote = payoff_amount(installments, today)
    assert unpaid_principal(installments) <= quote <= outstanding_balance(installments)
    result = pay_off(installments, today)
    assert result.applied == quote
    assert quote + result.waived_interest == outstanding_balance(installments)


@property_settings
@given(
    original_principal=st.integers(min_value=0, max_value=2_000_000),
    fee=st.integers(min_value=0, max_value=50_000),
    cap_bps=st.integers(min_value=0, max_value=10_000),
    count=st.integers(min_value=0, max_value=40),
)
def test_late_fees_never_exceed_the_cap(
    original_principal: int, fee: int, cap_bps: int, count: int
) -> None:
    charged = 0
    for _ in range(count):
        added = late_fee_for(original_principal, charged, fee, cap_bps)
        assert 0 <= added <= fee
        charged += added
    assert charged * 10_000 <= original_principal * cap_bps
    assert charged == min(count * fee, late_fee_cap(original_principal, cap_bps))
