"""Checkout (the seed's Transaction Service): checkouts and their lifecycle, refunds.

It orchestrates the purchase: the credit decision, the plan, the down payment, captures,
voids and refunds, each with its ledger entries, events and audit record in one transaction.
Only the web pages (`bnpl.web`) import checkout: `hosted_checkout` reads what the hosted
checkout page shows; every change still goes through the HTTP API.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from bnpl import ledger, merchants
from bnpl.checkout import repository, service
from bnpl.checkout.domain import Checkout, CheckoutStatus, PlanOption, hosted_token_valid
from bnpl.checkout.jobs import ExpireAuthorizations, ExpireOpenCheckouts, ResumeConfirmations
from bnpl.checkout.repository import captured_after_expiry as late_captures
from bnpl.runtime import Runtime

__all__ = [
    "Checkout",
    "HostedCheckout",
    "PlanOption",
    "hosted_checkout",
    "hosted_token_valid",
    "plan_options",
    "register",
]


@dataclass(frozen=True, slots=True)
class HostedCheckout:
    """What the hosted checkout page shows: the checkout, its merchant's name and (while it is
    open) the plans on offer, with the merchant's terms."""

    checkout: Checkout
    merchant_name: str
    options: list[PlanOption]


async def hosted_checkout(conn: asyncpg.Connection, checkout_id: str) -> HostedCheckout | None:
    """The checkout behind a `redirect_url` (the caller checks its token), or None."""
    found = await service.get_checkout(conn, checkout_id)
    if found is None:
        return None
    config = await merchants.merchant_config(conn, found.merchant_id)
    options: list[PlanOption] = []
    if config is not None and found.status.public == "open":
        options = service.plan_options(config, found.amount)
    return HostedCheckout(found, config.legal_name if config else "", options)


def plan_options(config: merchants.MerchantConfig, amount: int) -> list[PlanOption]:
    """The plans `config` offers for `amount`, each with its regular installment (what a
    checkout's `available_plans` shows, and the merchant widget's message)."""
    return service.plan_options(config, amount)


async def _merchant_payable_matches(conn: asyncpg.Connection) -> ledger.CheckResult:
    """merchant_payable = captured - refunded - fees, less what settlements moved out."""
    expected = await repository.merchant_payable_expected(conn)
    for currency, moved in (await merchants.settled_out(conn)).items():
        expected[currency] = expected.get(currency, 0) - moved
    currencies = set(expected) | {
        b.currency
        for b in await ledger.balances(conn)
        if b.account == ledger.Account.MERCHANT_PAYABLE
    }
    wrong = []
    for currency in sorted(currencies):
        booked = await ledger.account_balance(conn, ledger.Account.MERCHANT_PAYABLE, currency)
        if booked != expected.get(currency, 0):
            wrong.append(
                f"{currency}: ledger {booked} vs checkouts and settlements "
                f"{expected.get(currency, 0)}"
            )
    return ledger.CheckResult(not wrong, "; ".join(wrong) or "merchant payable reconciles")


async def _authorizations_settled(conn: asyncpg.Connection) -> ledger.CheckResult:
    """merchant_authorized holds exactly the amount of each checkout still `authorized`: a
    captured, voided or expired checkout keeps no balance there (its plan's authorization
    entry references the plan; the capture, release, void or expiry the checkout), and no
    checkout was captured once its authorization had expired. References that belong to no
    checkout (plans or entries written directly by tools and tests) are not this check's
    business: the trial balance and the plan checks cover them."""
    held = await ledger.balances_by_reference(conn, ledger.Account.MERCHANT_AUTHORIZED)
    wrong = []
    for row in await repository.financed(conn):
        balance = held.pop(row["id"], 0) + held.pop(row["plan_id"], 0)
        expected = row["amount"] if row["status"] == CheckoutStatus.AUTHORIZED else 0
        if balance != expected:
            wrong.append(f"{row['id']} ({row['status']}): {balance} vs {expected}")
    wrong += [f"{c} captured after its authorization expired" for c in await late_captures(conn)]
    if wrong:
        shown = "; ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        return ledger.CheckResult(False, f"merchant_authorized left over: {shown}")
    return ledger.CheckResult(True, "merchant_authorized holds exactly the open authorizations")


def register(rt: Runtime) -> None:
    rt.scheduler.register(ExpireOpenCheckouts())
    rt.scheduler.register(ExpireAuthorizations())
    rt.scheduler.register(ResumeConfirmations(rt))
    ledger.register_check("checkout.merchant_payable", _merchant_payable_matches)
    ledger.register_check("checkout.authorizations_settled", _authorizations_settled)
