"""Unit tests of plan cancellation and of the plan status after a refund."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bnpl.installments.domain import (
    Installment,
    InstallmentStatus,
    PlanKind,
    PlanStatus,
    allocate_payment,
    allocate_refund,
    build_schedule,
    cancel_installments,
    outstanding_balance,
    plan_principal,
    start_installments,
    status_after_refund,
)

D = date(2026, 11, 25)


def _pay_in_4(principal: int = 40_000) -> tuple[Installment, ...]:
    return start_installments(build_schedule(PlanKind.PAY_IN_4, principal, 0, D))


def test_cancel_waives_everything_unpaid_and_reports_what_was_paid() -> None:
    plan = allocate_payment(_pay_in_4(), 14_000).installments  # #1 and 4,000 of #2
    canceled = cancel_installments(plan)
    assert canceled.paid_by_consumer == 14_000
    assert (canceled.paid_principal, canceled.paid_interest, canceled.paid_fees) == (14_000, 0, 0)
    assert canceled.released_principal == 26_000
    assert canceled.canceled == (2, 3, 4)
    assert [i.status for i in canceled.installments] == [
        InstallmentStatus.PAID,
        *[InstallmentStatus.CANCELED] * 3,
    ]
    assert [i.principal for i in canceled.installments] == [10_000, 4_000, 0, 0]
    assert outstanding_balance(canceled.installments) == 0
    assert plan_principal(canceled.installments) == 14_000


def test_cancel_waives_interest_and_fees() -> None:
    plan = start_installments(build_schedule(PlanKind.MONTHLY_6, 50_001, 1999, D))
    plan = (replace(plan[0], fees=700, status=InstallmentStatus.LATE), *plan[1:])
    plan = allocate_payment(plan, 1_000).installments  # the fee, then 300 of interest
    canceled = cancel_installments(plan)
    assert (canceled.paid_fees, canceled.paid_interest, canceled.paid_principal) == (700, 300, 0)
    assert canceled.waived_fees == 0
    assert canceled.waived_interest == 2_956 - 300
    assert canceled.released_principal == 50_001
    assert canceled.canceled == (1, 2, 3, 4, 5, 6)


def test_status_after_refund() -> None:
    paid_plan = allocate_payment(_pay_in_4(), 40_000).installments
    assert status_after_refund(paid_plan, PlanStatus.PAID_OFF, fully_refunded=False) is (
        PlanStatus.PAID_OFF
    )
    assert status_after_refund(paid_plan, PlanStatus.PAID_OFF, fully_refunded=True) is (
        PlanStatus.REFUNDED
    )
    # A partial refund that leaves only paid installments pays the plan off.
    after = allocate_refund(allocate_payment(_pay_in_4(), 10_000).installments, 30_000)
    assert status_after_refund(after.installments, PlanStatus.ACTIVE, fully_refunded=False) is (
        PlanStatus.PAID_OFF
    )
    assert status_after_refund(after.installments, PlanStatus.CANCELED, fully_refunded=True) is (
        PlanStatus.CANCELED
    )


@settings(max_examples=200, deadline=None, database=None)
@given(principal=st.integers(1_000, 200_000), paid=st.integers(0, 200_000))
def test_cancel_conserves_money(principal: int, paid: int) -> None:
    plan = allocate_payment(_pay_in_4(principal), min(paid, principal)).installments
    canceled = cancel_installments(plan)
    assert canceled.paid_by_consumer == min(paid, principal)
    assert canceled.released_principal + canceled.paid_principal == principal
    assert all(not i.is_open for i in canceled.installments)
