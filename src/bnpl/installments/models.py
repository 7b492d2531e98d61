"""The plain data the installments facade hands out, and the errors it raises.

Other contexts get these frozen dataclasses (ids, integers of minor units, dates), never
database rows or domain internals.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from bnpl.installments.domain import InstallmentStatus, PlanKind, PlanStatus

PaymentKind = Literal["installment", "down_payment", "prepayment"]
"""What a payment applied to a plan was for (the `refund` kind is not applied to a plan)."""


# --------------------------------------------------------------------------- errors


class InstallmentsError(Exception):
    """Base of the errors the installments facade raises."""


class PlanNotFound(InstallmentsError):
    def __init__(self, plan_id: str) -> None:
        super().__init__(f"no plan {plan_id}")
        self.plan_id = plan_id


class PlanExists(InstallmentsError):
    """The checkout already has a plan (a checkout is financed at most once)."""

    def __init__(self, checkout_id: str) -> None:
        super().__init__(f"checkout {checkout_id} already has a plan")
        self.checkout_id = checkout_id


class PlanClosed(InstallmentsError):
    """The operation is not possible in the plan's (closed) status."""

    def __init__(self, plan_id: str, status: PlanStatus) -> None:
        super().__init__(f"plan {plan_id} is {status}")
        self.plan_id = plan_id
        self.status = status


class RefundExceedsPlan(InstallmentsError):
    """The refunds of a plan would exceed the amount it financed."""

    def __init__(self, plan_id: str, amount: int, refundable: int) -> None:
        super().__init__(f"refund {amount} on plan {plan_id} exceeds the refundable {refundable}")
        self.plan_id = plan_id
        self.amount = amount
        self.refundable = refundable


# --------------------------------------------------------------------------- plans


@dataclass(frozen=True, slots=True)
class PlanInstallment:
    """One installment as the API shows it (amounts in the plan's currency)."""

    seq: int
    due_date: date
    principal: int
    interest: int
    fees: int
    amount_due: int
    amount_paid: int
    status: InstallmentStatus


@dataclass(frozen=True, slots=True)
class Plan:
    """An installment plan (API.md, "Plans").

    ``principal`` is the current principal: the sum of the installments' principals,
    reduced by every refund applied to the plan; ``original_principal`` is what was
    financed. ``outstanding_balance`` is the sum of ``amount_due - amount_paid`` of the
    installments still open (``scheduled`` or ``late``).
    """

    id: str
    status: PlanStatus
    plan: PlanKind
    checkout_id: str
    consumer_id: str
    merchant_id: str
    currency: str
    principal: int
    original_principal: int
    apr_bps: int
    outstanding_balance: int
    late_fees_total: int
    payment_method_id: str
    installments: tuple[PlanInstallment, ...]
    created_at: datetime

    @property
    def is_closed(self) -> bool:
        return self.status.is_closed


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class InstallmentPayment:
    """The part of a payment applied to one installment."""

    seq: int
    principal: int
    interest: int
    fees: int

    @property
    def amount(self) -> int:
        return self.principal + self.interest + self.fees


@dataclass(frozen=True, slots=True)
class PaymentApplication:
    """How a payment was applied: the split the caller books (ledger: principal reduces
    the receivable, interest and fees are income; credit: principal frees exposure).

    ``applied + unapplied == amount``. ``unapplied`` is non-zero only when the payment
    exceeds what the plan owes (e.g. it was refunded meanwhile); the caller pays it back.
    ``waived_interest`` is the future interest a payoff forgave.
    """

    plan_id: str
    kind: PaymentKind
    amount: int
    currency: str
    principal: int
    interest: int
    fees: int
    unapplied: int
    waived_interest: int
    parts: tuple[InstallmentPayment, ...]
    paid_installments: tuple[int, ...]
    """Seqs of the installments this payment settled."""
    plan: Plan

    @property
    def applied(self) -> int:
        return self.principal + self.interest + self.fees


@dataclass(frozen=True, slots=True)
class RefundApplication:
    """How a refund (or the released part of a partial capture) was allocated.

    ``applied_to_plan + refunded_to_consumer == amount``: the first reduces the plan's
    unpaid principal (and the consumer's exposure), the second is paid back to the
    consumer's payment method (a payment of kind ``refund``).
    """

    plan_id: str
    amount: int
    currency: str
    applied_to_plan: int
    refunded_to_consumer: int
    waived_interest: int
    waived_fees: int
    canceled_installments: tuple[int, ...]
    plan: Plan


@dataclass(frozen=True, slots=True)
class Cancellation:
    """A canceled plan: what the consumer paid on it (the caller pays it back) and the
    unpaid principal released (the receivable and exposure that go away)."""

    plan_id: str
    currency: str
    paid_by_consumer: int
    paid_principal: int
    paid_interest: int
    paid_fees: int
    unpaid_principal_released: int
    waived_interest: int
    waived_fees: int
    canceled_installments: tuple[int, ...]
    plan: Plan


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    """What settles the plan on ``as_of`` (unpaid principal and fees, interest already
    due; future interest waived), and the interest that payoff would waive."""

    plan_id: str
    currency: str
    amount: int
    waived_interest: int
    as_of: date
