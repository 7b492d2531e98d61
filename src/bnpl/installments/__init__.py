"""Installments context: plans, schedules, late fees and delinquency.

The public facade. Every function takes the caller's ``asyncpg`` connection and runs in
the caller's transaction (the checkout and payments contexts own the boundary); those
that change a plan lock its row first. Money is an ``int`` of minor units in the plan's
currency; ``at`` is business time (``Clock.now()``), always time-zone aware.

Rules this context decides (DOMAIN.md leaves them open):

- A plan's ``principal`` is always the sum of its installments' principals: refunds lower
  it by ``applied_to_plan``; the part of a refund paid back to the consumer does not (that
  principal was paid, and stays booked on its paid installment). ``original_principal``
  keeps the amount financed.
- A plan is ``refunded`` once its refunds (partial-capture releases included) add up to
  its original principal, even if it was ``paid_off`` before. A partial refund that
  leaves only paid installments makes it ``paid_off``. Refunds beyond the original
  principal are refused (``RefundExceedsPlan``), under the plan's row lock.
- Canceling (void, authorization expiry) cancels every open installment, keeps paid ones
  as they are, and reports everything paid as ``paid_by_consumer`` for the caller to pay
  back; a ``paid_off`` plan (prepaid before capture) can still be canceled.
- A payment larger than what the plan owes is never over-applied: the excess comes back
  as ``unapplied``. A ``prepayment`` of at least the payoff amount settles the plan and
  waives the interest of installments not yet due.
- Autopay charges, on each due date, everything then due (overdue amounts and fees too).
  A soft decline is retried 1, 3 and 7 days after the due date that collection is for (the
  newest it covers), by date: at most four automatic attempts per due date, never a burst.
  Then autopay waits for the next due date.
- A payment the consumer makes (next installment, payoff) is never retried automatically, and
  its failure leaves autopay as it was (a hard decline of the consumer's chosen card does not
  block, nor unblock, the plan's autopay).
- A charged-off plan's written-off principal no longer counts against the consumer's credit
  limit, but the charged-off plan itself declines new purchases (``delinquent_account``).
"""

import asyncpg

from bnpl import ledger
from bnpl.installments import repository
from bnpl.installments.autopay import CollectAutopay
from bnpl.installments.collections import AssessLateFees, ChargeOff
from bnpl.installments.domain import (
    InstallmentStatus,
    PlanKind,
    PlanStatus,
    build_schedule,
    installment_amount_preview,
)
from bnpl.installments.models import (
    Cancellation,
    InstallmentPayment,
    InstallmentsError,
    PaymentApplication,
    PaymentKind,
    PayoffQuote,
    Plan,
    PlanClosed,
    PlanExists,
    PlanInstallment,
    PlanNotFound,
    RefundApplication,
    RefundExceedsPlan,
)
from bnpl.installments.service import (
    PlanTerms,
    Portfolio,
    apply_payment,
    apply_refund,
    cancel_plan,
    create_plan,
    create_plan_paid_down,
    get_plan,
    has_delinquent_plan,
    payoff_quote,
    plans_of_consumer,
    portfolio,
    unpaid_principal_total,
)
from bnpl.runtime import Runtime

__all__ = [
    "Cancellation",
    "InstallmentPayment",
    "InstallmentStatus",
    "InstallmentsError",
    "PaymentApplication",
    "PaymentKind",
    "PayoffQuote",
    "Plan",
    "PlanClosed",
    "PlanExists",
    "PlanInstallment",
    "PlanKind",
    "PlanNotFound",
    "PlanStatus",
    "PlanTerms",
    "Portfolio",
    "RefundApplication",
    "RefundExceedsPlan",
    "apply_payment",
    "apply_refund",
    "build_schedule",
    "cancel_plan",
    "create_plan",
    "create_plan_paid_down",
    "get_plan",
    "has_delinquent_plan",
    "installment_amount_preview",
    "payoff_quote",
    "plans_of_consumer",
    "portfolio",
    "register",
    "unpaid_principal_total",
]


async def _receivables_match(conn: asyncpg.Connection) -> ledger.CheckResult:
    """consumer/interest/fees receivable = what open plans owe (principal, accrued interest,
    late fees), per currency."""
    wrong = []
    owed = {r["currency"]: r for r in await repository.receivable_totals(conn)}
    booked_currencies = {b.currency for b in await ledger.balances(conn)}
    for currency in sorted(set(owed) | booked_currencies):
        row = owed.get(currency)
        for account, column in (
            (ledger.Account.CONSUMER_RECEIVABLE, "principal"),
            (ledger.Account.INTEREST_RECEIVABLE, "interest"),
            (ledger.Account.FEES_RECEIVABLE, "fees"),
        ):
            expected = int(row[column]) if row is not None else 0
            booked = await ledger.account_balance(conn, account, currency)
            if booked != expected:
                wrong.append(f"{currency} {account}: ledger {booked} vs plans {expected}")
    return ledger.CheckResult(not wrong, "; ".join(wrong) or "receivables reconcile with plans")


def register(rt: Runtime) -> None:
    """Collections, late fees and charge-offs on the scheduler; the receivables check."""
    rt.scheduler.register(CollectAutopay(rt))
    rt.scheduler.register(
        AssessLateFees(
            grace_days=rt.settings.late_fee_grace_days,
            fee=rt.settings.late_fee,
            cap_bps=rt.settings.late_fee_cap_bps,
        )
    )
    rt.scheduler.register(ChargeOff(rt))
    ledger.register_check("installments.receivables", _receivables_match)
