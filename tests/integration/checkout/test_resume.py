"""A confirmation interrupted by a crash is resumed by `checkout.resume_confirmations` with the
down payment's original gateway key: the card is charged once, whatever the crash point.

The job is run directly at "a minute later" (the shared clock is not moved)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bnpl import payments
from bnpl.checkout import service
from bnpl.checkout.jobs import ResumeConfirmations
from tests.e2e.checkout.helpers import DECLINED_CARD, GOOD_CARD, Buyer, Flow
from tests.support import Api


async def crash_after_begin(api: Api, flow: Flow, buyer: Buyer, *, charged: bool) -> str:
    """Confirm up to the recorded down payment, then 'crash' (before or after the gateway
    charged the card, its answer lost). Returns the checkout id."""
    merchant = await api.active_merchant()
    checkout = await flow.create(merchant, 40_000)
    async with api.rt.db.transaction() as conn:
        step = await service.begin_confirm(
            conn,
            api.rt,
            checkout_id=checkout["id"],
            consumer_id=buyer.id,
            plan="pay_in_4",
            payment_method_id=buyer.pm,
            at=api.rt.clock.now(),
        )
    assert step.down_payment is not None
    if charged:
        settlement = await payments.run_charge(
            api.rt.providers.gateway, step.down_payment, api.rt.clock
        )
        assert settlement.succeeded  # ... and then the process died
    r = await api.client.get(f"/v1/checkouts/{checkout['id']}", headers=merchant.headers)
    assert r.json()["status"] == "open"  # confirming, to the outside
    return str(checkout["id"])


async def resume(api: Api) -> None:
    later = api.rt.clock.now() + timedelta(minutes=1, seconds=1)
    await ResumeConfirmations(api.rt).run_due(api.rt.db, later, 100)
    await api.settle()


@pytest.mark.parametrize("charged", [False, True])
async def test_resumed_confirmation_charges_once(api: Api, charged: bool) -> None:
    flow = Flow(api)
    buyer = await flow.buyer(GOOD_CARD)
    checkout_id = await crash_after_begin(api, flow, buyer, charged=charged)
    await resume(api)
    row = await api.rt.db.fetchrow(
        "SELECT status, plan_id, down_payment_id FROM checkout.checkouts WHERE id = $1",
        checkout_id,
    )
    assert row is not None and row["status"] == "authorized"
    plan = await flow.plan(row["plan_id"])
    assert plan["installments"][0]["status"] == "paid"
    charges = await flow.gateway_charges(row["down_payment_id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(10_000, "captured")]
    assert (await flow.me(buyer))["available_credit"] == 100_000 - 30_000
    assert (await flow.audit_actions(checkout_id))[-1] == ("system", "checkout.authorized")
    # Resuming again changes nothing.
    await resume(api)
    assert await flow.plans_of_checkout(checkout_id) == 1
    assert len(await flow.gateway_charges(row["down_payment_id"])) == 1


async def test_resumed_confirmation_with_a_declined_card(api: Api) -> None:
    flow = Flow(api)
    buyer = await flow.buyer(DECLINED_CARD)
    checkout_id = await crash_after_begin(api, flow, buyer, charged=False)
    assert (await flow.me(buyer))["available_credit"] == 100_000 - 40_000  # held meanwhile
    await resume(api)
    row = await api.rt.db.fetchrow(
        "SELECT status, decline_reasons, plan_id FROM checkout.checkouts WHERE id = $1",
        checkout_id,
    )
    assert row is not None
    assert (row["status"], list(row["decline_reasons"]), row["plan_id"]) == (
        "declined",
        ["payment_method_declined"],
        None,
    )
    assert await flow.plans_of_checkout(checkout_id) == 0
    assert (await flow.me(buyer))["available_credit"] == 100_000
    assert (await flow.audit_actions(checkout_id))[-1] == ("system", "checkout.declined")
