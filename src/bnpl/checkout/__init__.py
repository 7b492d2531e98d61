"""Checkout (the seed's Transaction Service): checkouts and their lifecycle, refunds.

It orchestrates the purchase: the credit decision, the plan, the down payment, captures,
voids and refunds, each with its ledger entries, events and audit record in one transaction.
Nothing imports checkout; it exposes only `register`.
"""

from __future__ import annotations

import asyncpg

from bnpl import ledger, merchants
from bnpl.checkout import repository
from bnpl.checkout.jobs import ExpireAuthorizations, ExpireOpenCheckouts, ResumeConfirmations
from bnpl.runtime import Runtime

__all__ = ["register"]


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


def register(rt: Runtime) -> None:
    rt.scheduler.register(ExpireOpenCheckouts())
    rt.scheduler.register(ExpireAuthorizations())
    rt.scheduler.register(ResumeConfirmations(rt))
    ledger.register_check("checkout.merchant_payable", _merchant_payable_matches)
