"""Pure domain logic of installment plans: schedules, payments, refunds, late fees.

No I/O here. Money is an ``int`` of minor units, rates are integer basis points,
and every fractional step uses exact ``Fraction`` arithmetic with explicit
"round half up" (DOMAIN.md, "Money, time, identity"). State is modelled as small
frozen dataclasses; every operation returns new state instead of mutating.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, timedelta
from enum import StrEnum
from fractions import Fraction
from typing import Final

__all__ = [
    "DEFAULT_CHARGE_OFF_DAYS",
    "DEFAULT_GRACE_DAYS",
    "DEFAULT_LATE_FEE",
    "DEFAULT_LATE_FEE_CAP_BPS",
    "CancelAllocation",
    "Installment",
    "InstallmentAllocation",
    "InstallmentStatus",
    "LateFeeAssessment",
    "PaymentAllocation",
    "PlanKind",
    "PlanStatus",
    "RefundAllocation",
    "ScheduledInstallment",
    "add_months",
    "allocate_payment",
    "allocate_refund",
    "assess_late_fees",
    "build_schedule",
    "cancel_installments",
    "days_past_due",
    "installment_amount_preview",
    "is_charge_off_due",
    "late_fee_cap",
    "late_fee_for",
    "next_installment_amount",
    "outstanding_balance",
    "overdue_amount",
    "pay_off",
    "payoff_amount",
    "plan_principal",
    "plan_status_for",
    "round_half_up",
    "start_installments",
    "status_after_refund",
    "unpaid_principal",
]

DEFAULT_LATE_FEE = 700
DEFAULT_LATE_FEE_CAP_BPS = 2_500
DEFAULT_GRACE_DAYS = 10
DEFAULT_CHARGE_OFF_DAYS = 120

_BPS = 10_000
_MONTHS_PER_YEAR = 12
_PAY_IN_4_SPACING = timedelta(days=14)


# --------------------------------------------------------------------------- plans


class PlanKind(StrEnum):
    """The plans a checkout can be financed with (DOMAIN.md, "Plans")."""

    PAY_IN_4 = "pay_in_4"
    MONTHLY_6 = "monthly_6"
    MONTHLY_12 = "monthly_12"

    @property
    def installment_count(self) -> int:
        return _INSTALLMENT_COUNT[self]

    @property
    def min_amount(self) -> int:
        """Smallest principal the platform finances with this plan (minor units)."""
        return _AMOUNT_RANGE[self][0]

    @property
    def max_amount(self) -> int:
        """Largest principal the platform finances with this plan (minor units)."""
        return _AMOUNT_RANGE[self][1]

    @property
    def has_down_payment(self) -> bool:
        """Installment 1 is due, and charged, at authorization."""
        return self is PlanKind.PAY_IN_4

    @property
    def charges_interest(self) -> bool:
        """Whether the merchant's APR applies (pay_in_4 is always interest-free)."""
        return self is not PlanKind.PAY_IN_4

    def allows_amount(self, amount: int) -> bool:
        """Whether ``amount`` is inside the platform's range for this plan."""
        return self.min_amount <= amount <= self.max_amount


_INSTALLMENT_COUNT: dict[PlanKind, int] = {
    PlanKind.PAY_IN_4: 4,
    PlanKind.MONTHLY_6: 6,
    PlanKind.MONTHLY_12: 12,
}
_AMOUNT_RANGE: dict[PlanKind, tuple[int, int]] = {
    PlanKind.PAY_IN_4: (1_000, 200_000),
    PlanKind.MONTHLY_6: (5_000, 1_000_000),
    PlanKind.MONTHLY_12: (5_000, 1_000_000),
}


class PlanStatus(StrEnum):
    ACTIVE = "active"
    DELINQUENT = "delinquent"
    PAID_OFF = "paid_off"
    REFUNDED = "refunded"
    CANCELED = "canceled"
    CHARGED_OFF = "charged_off"

    @property
    def is_closed(self) -> bool:
        return self not in (PlanStatus.ACTIVE, PlanStatus.DELINQUENT)


class InstallmentStatus(StrEnum):
    SCHEDULED = "scheduled"
    PAID = "paid"
    LATE = "late"
    CANCELED = "canceled"

    @property
    def is_open(self) -> bool:
        """Open installments can still receive payments, refunds and late fees."""
        return self in _OPEN_INSTALLMENTS


_OPEN_INSTALLMENTS: Final = frozenset({InstallmentStatus.SCHEDULED, InstallmentStatus.LATE})


# --------------------------------------------------------------------------- arithmetic


def round_half_up(value: Fraction) -> int:
    """Round an exact rational to the nearest integer, ties going up (towards +inf)."""
    return (value.numerator * 2 + value.denominator) // (value.denominator * 2)


def add_months(start: date, months: int) -> date:
    """``start`` plus ``months`` calendar months, clamped to the last day of that month."""
    year, month_index = divmod(start.month - 1 + months, _MONTHS_PER_YEAR)
    year += start.year
    month = month_index + 1
    last_day = calendar.monthrange(year, month)[1]
    return date(year, month, min(start.day, last_day))


def _monthly_rate(apr_bps: int) -> Fraction:
    return Fraction(apr_bps, _BPS * _MONTHS_PER_YEAR)


def _amortized_payment(principal: int, rate: Fraction, count: int) -> int:
    """``round_half_up(P * r / (1 - (1 + r) ** -n))`` for ``r > 0``, exactly."""
    return round_half_up(principal * rate / (1 - (1 + rate) ** -count))


# --------------------------------------------------------------------------- schedules


@dataclass(frozen=True, slots=True)
class ScheduledInstallment:
    """One line of a freshly built repayment schedule."""

    seq: int
    due_date: date
    principal: int
    interest: int

    @property
    def amount(self) -> int:
        return self.principal + self.interest


def _validate_terms(principal: int, apr_bps: int) -> None:
    if principal <= 0:
        raise ValueError(f"principal must be positive, got {principal}")
    if apr_bps < 0:
        raise ValueError(f"apr_bps must not be negative, got {apr_bps}")


def build_schedule(
    kind: PlanKind, principal: int, apr_bps: int, authorization_date: date
) -> list[ScheduledInstallment]:
    """The repayment schedule of a plan, per DOMAIN.md ("pay_in_4 schedule", "Monthly schedule").

    Principals always sum to exactly ``principal``. ``apr_bps`` is ignored for
    ``pay_in_4``. The platform/merchant amount range is not checked here (that is a
    credit-decision rule); only ``principal > 0`` and ``apr_bps >= 0`` are.
    """
    _validate_terms(principal, apr_bps)
    if kind is PlanKind.PAY_IN_4:
        return _pay_in_4_schedule(principal, authorization_date)
    return _monthly_schedule(principal, apr_bps, kind.installment_count, authorization_date)


def _pay_in_4_schedule(principal: int, authorization_date: date) -> list[ScheduledInstallment]:
    regular = principal // 4
    first = principal - 3 * regular
    return [
        ScheduledInstallment(
            seq=k + 1,
            due_date=authorization_date + k * _PAY_IN_4_SPACING,
            principal=first if k == 0 else regular,
            interest=0,
        )
        for k in range(4)
    ]


def _monthly_schedule(
    principal: int, apr_bps: int, count: int, authorization_date: date
) -> list[ScheduledInstallment]:
    due_dates = [add_months(authorization_date, k) for k in range(1, count + 1)]
    rate = _monthly_rate(apr_bps)
    if rate == 0:
        regular = principal // count
        first = principal - (count - 1) * regular
        return [
            ScheduledInstallment(
                seq=k + 1, due_date=due, principal=first if k == 0 else regular, interest=0
            )
            for k, due in enumerate(due_dates)
        ]

    payment = _amortized_payment(principal, rate, count)
    schedule: list[ScheduledInstallment] = []
    balance = principal
    for k, due in enumerate(due_dates, start=1):
        interest = round_half_up(balance * rate)
        # The last installment takes the whole remaining balance. Before it, payment >=
        # round(P * r) >= interest, so the principal part is never negative; it could only
        # exceed the balance for tiny principals far below any plan's minimum amount, and
        # clamping keeps every component non-negative there too.
        part = balance if k == count else min(payment - interest, balance)
        schedule.append(
            ScheduledInstallment(seq=k, due_date=due, principal=part, interest=interest)
        )
        balance -= part
    return schedule


def installment_amount_preview(kind: PlanKind, principal: int, apr_bps: int) -> int:
    """The regular installment amount shown in a checkout's ``available_plans``.

    ``pay_in_4``: installments 2-4 (``P // 4``; installment 1 may carry up to 3 extra
    cents). Monthly at 0 APR: ``P // n`` (installment 1 carries the remainder). Monthly
    with interest: the amortized payment ``A`` (the last installment may differ by a
    few cents of rounding).
    """
    _validate_terms(principal, apr_bps)
    count = kind.installment_count
    if kind is PlanKind.PAY_IN_4:
        return principal // count
    rate = _monthly_rate(apr_bps)
    if rate == 0:
        return principal // count
    return _amortized_payment(principal, rate, count)


# --------------------------------------------------------------------------- plan state


@dataclass(frozen=True, slots=True)
class Installment:
    """The live state of one installment of a plan.

    ``fees`` are late fees. Amounts waived (by a refund or a payoff) are removed from
    the component itself, so ``amount_due`` is always what the consumer owes in total
    for this installment, paid or not.
    """

    seq: int
    due_date: date
    principal: int
    interest: int
    fees: int = 0
    principal_paid: int = 0
    interest_paid: int = 0
    fees_paid: int = 0
    status: InstallmentStatus = InstallmentStatus.SCHEDULED

    def __post_init__(self) -> None:
        if not (
            0 <= self.principal_paid <= self.principal
            and 0 <= self.interest_paid <= self.interest
            and 0 <= self.fees_paid <= self.fees
        ):
            for name, owed, paid in (
                ("principal", self.principal, self.principal_paid),
                ("interest", self.interest, self.interest_paid),
                ("fees", self.fees, self.fees_paid),
            ):
                if paid < 0 or owed < paid:
                    raise ValueError(
                        f"installment {self.seq}: {name} paid {paid} outside 0..{owed}"
                    )
        if self.status not in _OPEN_INSTALLMENTS and self.unpaid_amount != 0:
            raise ValueError(
                f"installment {self.seq} is {self.status} with {self.unpaid_amount} unpaid"
            )

    @property
    def amount_due(self) -> int:
        return self.principal + self.interest + self.fees

    @property
    def amount_paid(self) -> int:
        return self.principal_paid + self.interest_paid + self.fees_paid

    @property
    def unpaid_principal(self) -> int:
        return self.principal - self.principal_paid

    @property
    def unpaid_interest(self) -> int:
        return self.interest - self.interest_paid

    @property
    def unpaid_fees(self) -> int:
        return self.fees - self.fees_paid

    @property
    def unpaid_amount(self) -> int:
        return self.amount_due - self.amount_paid

    @property
    def is_open(self) -> bool:
        return self.status.is_open


def start_installments(schedule: Sequence[ScheduledInstallment]) -> tuple[Installment, ...]:
    """The initial state of a new plan's installments: all scheduled, nothing paid."""
    return tuple(
        Installment(seq=s.seq, due_date=s.due_date, principal=s.principal, interest=s.interest)
        for s in schedule
    )


def _in_due_order(installments: Sequence[Installment]) -> list[int]:
    """Indexes of ``installments`` from the oldest due to the newest."""
    return sorted(
        range(len(installments)), key=lambda i: (installments[i].due_date, installments[i].seq)
    )


def plan_principal(installments: Sequence[Installment]) -> int:
    """The plan's principal: always the sum of its installments' principals."""
    return sum(i.principal for i in installments)


def unpaid_principal(installments: Sequence[Installment]) -> int:
    """Principal still owed (the plan's exposure for credit-limit checks)."""
    return sum(i.unpaid_principal for i in installments if i.is_open)


def outstanding_balance(installments: Sequence[Installment]) -> int:
    """Sum of ``amount_due - amount_paid`` of installments not paid or canceled."""
    return sum(i.unpaid_amount for i in installments if i.is_open)


def next_installment_amount(installments: Sequence[Installment]) -> int:
    """Unpaid amount of the oldest open installment (0 when nothing is open)."""
    for index in _in_due_order(installments):
        installment = installments[index]
        if installment.is_open and installment.unpaid_amount > 0:
            return installment.unpaid_amount
    return 0


def overdue_amount(installments: Sequence[Installment], today: date) -> int:
    """Unpaid amount of open installments due on or before ``today``."""
    return sum(i.unpaid_amount for i in installments if i.is_open and i.due_date <= today)


def payoff_amount(installments: Sequence[Installment], today: date) -> int:
    """What settles the plan today (DOMAIN.md, "Collections").

    Unpaid principal and unpaid fees of every open installment, plus unpaid interest of
    installments already due (``due_date <= today``); future interest is waived.
    """
    return sum(
        i.unpaid_principal + i.unpaid_fees + (i.unpaid_interest if i.due_date <= today else 0)
        for i in installments
        if i.is_open
    )


# --------------------------------------------------------------------------- payments


@dataclass(frozen=True, slots=True)
class InstallmentAllocation:
    """The part of one payment applied to one installment."""

    seq: int
    fees: int
    interest: int
    principal: int

    @property
    def amount(self) -> int:
        return self.fees + self.interest + self.principal


@dataclass(frozen=True, slots=True)
class PaymentAllocation:
    """How a payment splits over a plan's installments, and the resulting state.

    ``installments`` keeps the input order. ``waived_interest`` is only non-zero for a
    payoff (future interest forgiven).
    """

    installments: tuple[Installment, ...]
    parts: tuple[InstallmentAllocation, ...]
    unapplied: int
    waived_interest: int = 0

    @property
    def applied(self) -> int:
        return sum(p.amount for p in self.parts)


def allocate_payment(installments: Sequence[Installment], amount: int) -> PaymentAllocation:
    """Apply ``amount`` to the oldest open installment first; within one, fees, then
    interest, then principal (DOMAIN.md, "Collections").

    An installment whose unpaid amount reaches zero becomes ``paid``. Whatever cannot
    be applied (the plan is fully paid) is returned as ``unapplied``; nothing is ever
    over-applied.
    """
    if amount < 0:
        raise ValueError(f"payment amount must not be negative, got {amount}")
    result = list(installments)
    parts: list[InstallmentAllocation] = []
    remaining = amount
    for index in _in_due_order(result):
        if remaining == 0:
            break
        installment = result[index]
        if not installment.is_open:
            continue
        fees = min(remaining, installment.unpaid_fees)
        remaining -= fees
        interest = min(remaining, installment.unpaid_interest)
        remaining -= interest
        principal = min(remaining, installment.unpaid_principal)
        remaining -= principal
        settled = fees + interest + principal == installment.unpaid_amount
        result[index] = replace(
            installment,
            fees_paid=installment.fees_paid + fees,
            interest_paid=installment.interest_paid + interest,
            principal_paid=installment.principal_paid + principal,
            status=InstallmentStatus.PAID if settled else installment.status,
        )
        if fees or interest or principal:
            parts.append(InstallmentAllocation(installment.seq, fees, interest, principal))
    return PaymentAllocation(installments=tuple(result), parts=tuple(parts), unapplied=remaining)


def pay_off(installments: Sequence[Installment], today: date) -> PaymentAllocation:
    """Settle the whole plan today with a payment of ``payoff_amount(installments, today)``.

    Unpaid interest of installments due after ``today`` is waived first (reported in
    ``waived_interest``); then the payoff amount is allocated, leaving every open
    installment ``paid``.
    """
    waived = 0
    discounted: list[Installment] = []
    for installment in installments:
        if installment.is_open and installment.due_date > today:
            waived += installment.unpaid_interest
            installment = replace(installment, interest=installment.interest_paid)
        discounted.append(installment)
    allocation = allocate_payment(discounted, payoff_amount(installments, today))
    # An installment left with nothing to pay once its interest is waived is settled too.
    settled = tuple(
        replace(i, status=InstallmentStatus.PAID) if i.is_open and i.unpaid_amount == 0 else i
        for i in allocation.installments
    )
    return replace(allocation, installments=settled, waived_interest=waived)


# --------------------------------------------------------------------------- refunds


@dataclass(frozen=True, slots=True)
class RefundAllocation:
    """The outcome of a refund (or of the part of an authorization a partial capture
    releases) on a plan. ``applied_to_plan + refunded_to_consumer`` is the refund amount,
    and the plan's principal drops by exactly ``applied_to_plan``."""

    installments: tuple[Installment, ...]
    applied_to_plan: int
    refunded_to_consumer: int
    waived_interest: int
    waived_fees: int
    canceled: tuple[int, ...]
    """Seqs of installments the refund canceled."""


def allocate_refund(installments: Sequence[Installment], amount: int) -> RefundAllocation:
    """Allocate a refund of ``amount`` over a plan (DOMAIN.md, "Refund allocation").

    Walking from the last installment backwards, each open installment's unpaid
    principal is cut, down to zero, until the refund is used up; the plan principal
    (the sum of installment principals) shrinks by the same ``applied_to_plan``. What is
    left above the plan's total unpaid principal is ``refunded_to_consumer`` (paid back
    to the consumer's payment method).

    Every open installment the refund reaches and leaves with no unpaid principal is
    settled: its unpaid interest and unpaid fees are waived (paid ones are kept: late
    fees already paid are never returned, and interest paid accrued while the consumer
    had the money). It becomes:

    - ``canceled`` when nothing was ever paid on it (its principal is now 0);
    - ``paid`` when it was partly paid: its principal shrinks to what was paid, so
      money already received stays booked against it and nothing more is owed.

    An installment the refund only partly reduces keeps its interest, fees and status.
    Paid and canceled installments are never touched.

    ``amount`` may not exceed the current plan principal; the exact refundable limit
    (captured minus refunded so far) is the checkout's rule, not checked here.
    """
    if amount < 0:
        raise ValueError(f"refund amount must not be negative, got {amount}")
    principal = plan_principal(installments)
    if amount > principal:
        raise ValueError(f"refund {amount} exceeds the plan principal {principal}")
    result = list(installments)
    remaining = amount
    waived_interest = 0
    waived_fees = 0
    canceled: list[int] = []
    for index in reversed(_in_due_order(result)):
        if remaining == 0:
            break
        installment = result[index]
        if not installment.is_open:
            continue
        cut = min(remaining, installment.unpaid_principal)
        remaining -= cut
        installment = replace(installment, principal=installment.principal - cut)
        if installment.unpaid_principal == 0:
            waived_interest += installment.unpaid_interest
            waived_fees += installment.unpaid_fees
            status = (
                InstallmentStatus.CANCELED
                if installment.amount_paid == 0
                else InstallmentStatus.PAID
            )
            if status is InstallmentStatus.CANCELED:
                canceled.append(installment.seq)
            installment = replace(
                installment,
                interest=installment.interest_paid,
                fees=installment.fees_paid,
                status=status,
            )
        result[index] = installment
    return RefundAllocation(
        installments=tuple(result),
        applied_to_plan=amount - remaining,
        refunded_to_consumer=remaining,
        waived_interest=waived_interest,
        waived_fees=waived_fees,
        canceled=tuple(sorted(canceled)),
    )


# --------------------------------------------------------------------------- late fees


def late_fee_cap(original_principal: int, cap_bps: int = DEFAULT_LATE_FEE_CAP_BPS) -> int:
    """Most late fees one plan may ever carry: ``cap_bps`` of its original principal,
    rounded down so the cap itself is never exceeded."""
    if original_principal < 0 or cap_bps < 0:
        raise ValueError("original principal and cap must not be negative")
    return original_principal * cap_bps // _BPS


def late_fee_for(
    original_principal: int,
    late_fees_charged: int,
    fee: int = DEFAULT_LATE_FEE,
    cap_bps: int = DEFAULT_LATE_FEE_CAP_BPS,
) -> int:
    """The late fee to add now: ``fee``, cut to fit the plan's cap, 0 once it is reached.

    ``late_fees_charged`` is every late fee charged on the plan so far, including any
    later waived by a refund (a waived fee was still charged).
    """
    if fee < 0 or late_fees_charged < 0:
        raise ValueError("fee and fees charged must not be negative")
    room = late_fee_cap(original_principal, cap_bps) - late_fees_charged
    return max(0, min(fee, room))


@dataclass(frozen=True, slots=True)
class LateFeeAssessment:
    installments: tuple[Installment, ...]
    newly_late: tuple[int, ...]
    """Seqs of installments that became ``late`` in this assessment."""
    fees_charged: int
    """Total late fees added in this assessment."""


def assess_late_fees(
    installments: Sequence[Installment],
    today: date,
    original_principal: int,
    late_fees_charged: int,
    *,
    grace_days: int = DEFAULT_GRACE_DAYS,
    fee: int = DEFAULT_LATE_FEE,
    cap_bps: int = DEFAULT_LATE_FEE_CAP_BPS,
) -> LateFeeAssessment:
    """Mark ``late`` every scheduled installment still unpaid ``grace_days`` after its due
    date (``today >= due_date + grace_days``), adding one late fee to each, oldest first,
    each cut to fit the plan's cap. Already-late installments never get a second fee,
    so running this again on the same day is a no-op.
    """
    result = list(installments)
    newly_late: list[int] = []
    charged = late_fees_charged
    for index in _in_due_order(result):
        installment = result[index]
        if installment.status is not InstallmentStatus.SCHEDULED:
            continue
        if installment.unpaid_amount == 0:
            continue
        if today < installment.due_date + timedelta(days=grace_days):
            continue
        late_fee = late_fee_for(original_principal, charged, fee, cap_bps)
        charged += late_fee
        result[index] = replace(
            installment, fees=installment.fees + late_fee, status=InstallmentStatus.LATE
        )
        newly_late.append(installment.seq)
    return LateFeeAssessment(
        installments=tuple(result),
        newly_late=tuple(newly_late),
        fees_charged=charged - late_fees_charged,
    )


# --------------------------------------------------------------------------- plan status


def days_past_due(installments: Sequence[Installment], today: date) -> int:
    """Days since the due date of the oldest open, unpaid installment (0 if none is due)."""
    overdue = [
        i.due_date for i in installments if i.is_open and i.unpaid_amount > 0 and i.due_date < today
    ]
    return (today - min(overdue)).days if overdue else 0


def is_charge_off_due(
    installments: Sequence[Installment], today: date, days: int = DEFAULT_CHARGE_OFF_DAYS
) -> bool:
    """Whether the plan is ``days`` (120 by default) past due and must be charged off."""
    return days_past_due(installments, today) >= days


def plan_status_for(
    installments: Sequence[Installment], current: PlanStatus, *, fully_refunded: bool = False
) -> PlanStatus:
    """The plan status its installments imply after a payment, refund or late fee.

    Closed statuses (``paid_off``, ``refunded``, ``canceled``, ``charged_off``) are
    final. ``fully_refunded`` (the whole captured amount was refunded, a checkout fact)
    or a principal refunded down to zero gives ``refunded``; otherwise a plan with
    nothing open is ``paid_off``, one with a late installment is ``delinquent``, and any
    other is ``active``.
    """
    if current.is_closed:
        return current
    if fully_refunded or plan_principal(installments) == 0:
        return PlanStatus.REFUNDED
    open_installments = [i for i in installments if i.is_open]
    if not open_installments:
        return PlanStatus.PAID_OFF
    if any(i.status is InstallmentStatus.LATE for i in open_installments):
        return PlanStatus.DELINQUENT
    return PlanStatus.ACTIVE


def status_after_refund(
    installments: Sequence[Installment], current: PlanStatus, *, fully_refunded: bool
) -> PlanStatus:
    """The plan status after a refund (or the release of a partial capture).

    As ``plan_status_for``, with one more transition: a ``paid_off`` plan whose whole
    amount is then refunded becomes ``refunded`` (the consumer paid everything early and
    the merchant took the goods back). A partial refund that leaves only paid
    installments gives ``paid_off``.
    """
    if current is PlanStatus.PAID_OFF and fully_refunded:
        return PlanStatus.REFUNDED
    return plan_status_for(installments, current, fully_refunded=fully_refunded)


# --------------------------------------------------------------------------- cancellation


@dataclass(frozen=True, slots=True)
class CancelAllocation:
    """The outcome of canceling a plan (a void, or an authorization that expired).

    Every open installment is ``canceled`` with its unpaid amounts waived (its components
    shrink to what was paid on it, so the principal invariant still holds); paid
    installments keep their history. Everything paid on the plan goes back to the
    consumer: ``paid_principal + paid_interest + paid_fees`` is ``paid_by_consumer``.
    """

    installments: tuple[Installment, ...]
    paid_principal: int
    paid_interest: int
    paid_fees: int
    released_principal: int
    """Unpaid principal the cancellation removes (the exposure released)."""
    waived_interest: int
    waived_fees: int
    canceled: tuple[int, ...]

    @property
    def paid_by_consumer(self) -> int:
        return self.paid_principal + self.paid_interest + self.paid_fees


def cancel_installments(installments: Sequence[Installment]) -> CancelAllocation:
    """Cancel every open installment of a plan (see ``CancelAllocation``)."""
    result: list[Installment] = []
    released = waived_interest = waived_fees = 0
    canceled: list[int] = []
    for installment in installments:
        if installment.is_open:
            released += installment.unpaid_principal
            waived_interest += installment.unpaid_interest
            waived_fees += installment.unpaid_fees
            canceled.append(installment.seq)
            installment = replace(
                installment,
                principal=installment.principal_paid,
                interest=installment.interest_paid,
                fees=installment.fees_paid,
                status=InstallmentStatus.CANCELED,
            )
        result.append(installment)
    return CancelAllocation(
        installments=tuple(result),
        paid_principal=sum(i.principal_paid for i in result),
        paid_interest=sum(i.interest_paid for i in result),
        paid_fees=sum(i.fees_paid for i in result),
        released_principal=released,
        waived_interest=waived_interest,
        waived_fees=waived_fees,
        canceled=tuple(sorted(canceled)),
    )


# --------------------------------------------------------------------------- collections

SOFT_DECLINE_RETRY_DAYS: tuple[int, ...] = (1, 3, 7)
"""Automatic retries after a soft decline, in days after the due date (DOMAIN.md)."""


def collectible_due(installments: Sequence[Installment], today: date) -> list[Installment]:
    """Open installments with something unpaid whose due date has come."""
    return [i for i in installments if i.is_open and i.unpaid_amount > 0 and i.due_date <= today]


def next_collection_date(
    installments: Sequence[Installment], exhausted_through: date | None
) -> date | None:
    """The due date on which autopay should next charge the plan.

    The oldest unpaid installment, unless its automatic attempts are exhausted (soft
    declines): then the next installment that falls due after it (whose charge also
    covers what is overdue).
    """
    dates = sorted(
        i.due_date
        for i in installments
        if i.is_open
        and i.unpaid_amount > 0
        and (exhausted_through is None or i.due_date > exhausted_through)
    )
    return dates[0] if dates else None


def retry_date(due: date, today: date) -> date | None:
    """When to retry a soft-declined collection of what fell due on `due`, after an attempt
    on `today`: the first retry day (due + 1, 3, 7 days) still ahead, or None (exhausted).

    By date, not by attempts counted: a collection that started late (a new installment
    fell due, the amount changed, a worker was down) never catches up in a burst.
    """
    for days in SOFT_DECLINE_RETRY_DAYS:
        day = due + timedelta(days=days)
        if day > today:
            return day
    return None


def charge_off_date(
    installments: Sequence[Installment], days: int = DEFAULT_CHARGE_OFF_DAYS
) -> date | None:
    """`days` after the oldest open, unpaid due date (None when nothing is overdue)."""
    overdue = [i.due_date for i in installments if i.is_open and i.unpaid_amount > 0]
    return min(overdue) + timedelta(days=days) if overdue else None
