"""Credit decisions at confirm: one test per decline rule of DOMAIN.md, in its order, and every
decision stored with its reasons, score, model version, features and latency."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from tests.e2e.checkout.helpers import DECLINED_CARD, NO_FUNDS_CARD, Buyer, Flow
from tests.support import Api, MerchantHandle


def years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return date(day.year - years, 3, 1)


async def declined(
    flow: Flow, merchant: MerchantHandle, buyer: Buyer, amount: int, plan: str, reason: str
) -> dict[str, Any]:
    """Confirm a new checkout; assert it is declined for `reason`, with no plan; return it."""
    checkout = await flow.create(merchant, amount)
    body = await flow.confirm(buyer, checkout["id"], plan)
    assert body["status"] == "declined", body
    assert body["decision"]["id"].startswith("dec_")
    assert body["decision"]["outcome"] == "declined"
    assert body["decision"]["reasons"] == [reason]
    assert body["plan_id"] is None
    assert await flow.plans_of_checkout(checkout["id"]) == 0
    # A declined checkout is final.
    r = await flow.confirm_response(buyer, checkout["id"], plan)
    assert r.status_code == 409 and r.json()["code"] == "checkout_not_open"
    row = await flow.decision(body["decision"]["id"])
    assert row["outcome"] == "declined" and list(row["reasons"]) == [reason]
    assert row["consumer_id"] == buyer.id and row["checkout_id"] == checkout["id"]
    assert row["amount"] == amount and row["plan"] == plan
    assert row["latency_ms"] >= 0 and isinstance(row["features"], dict)
    # Nothing of a declined checkout counts against the limit.
    me = await flow.me(buyer)
    assert me["available_credit"] == me["credit_limit"] - await open_principal(flow, buyer)
    # The merchant sees the same decision.
    seen = await flow.checkout(merchant, checkout["id"])
    assert seen["status"] == "declined" and seen["decision"] == body["decision"]
    return body


async def open_principal(flow: Flow, buyer: Buyer) -> int:
    total: int = await flow.api.rt.db.fetchval(
        "SELECT coalesce(sum(i.principal - i.principal_paid), 0) "
        "FROM installments.installments i JOIN installments.plans p ON p.id = i.plan_id "
        "WHERE p.consumer_id = $1 AND p.status IN ('active', 'delinquent') "
        "AND i.status IN ('scheduled', 'late')",
        buyer.id,
    )
    return total


async def test_kyc_rejected(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer(last_name="Fraudster")
    assert (await flow.me(buyer))["kyc_status"] == "rejected"
    body = await declined(flow, shop, buyer, 20_000, "pay_in_4", "kyc_not_verified")
    row = await flow.decision(body["decision"]["id"])
    # A rule decline is scored too (DOMAIN.md: every decision stores its score and model
    # version); the bureau is not asked for it, and the rule stays the only reason.
    assert 0.0 <= row["score"] <= 1.0 and row["model_version"]
    assert row["bureau"] == "not_consulted" and list(row["reasons"]) == ["kyc_not_verified"]


async def test_kyc_pending(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    # KYC answers within the drain of the bus; put this consumer back to "not yet verified".
    await flow.api.rt.db.execute(
        "UPDATE identity.consumers SET kyc_status = 'pending' WHERE id = $1", buyer.id
    )
    await declined(flow, shop, buyer, 20_000, "monthly_6", "kyc_not_verified")


async def test_underage(flow: Flow, shop: MerchantHandle) -> None:
    today = flow.api.rt.clock.today()
    minor = await flow.buyer(date_of_birth=years_before(today, 17).isoformat())
    await declined(flow, shop, minor, 20_000, "pay_in_4", "underage")
    # 18 today is of age.
    adult = await flow.buyer(date_of_birth=years_before(today, 18).isoformat())
    assert (await flow.authorized(shop, adult, 20_000))["status"] == "authorized"


async def test_amount_out_of_the_plans_range(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    # 3,000 may be bought with pay_in_4, but monthly_6 starts at 5,000.
    await declined(flow, shop, buyer, 3_000, "monthly_6", "amount_out_of_range")
    # 250,000 may be bought monthly, but pay_in_4 stops at 200,000.
    await flow.api.client.put(
        f"/v1/consumers/{buyer.id}/credit_limit",
        json={"amount": 1_000_000},
        headers=flow.api.operator,
    )
    await declined(flow, shop, buyer, 250_000, "pay_in_4", "amount_out_of_range")


async def test_delinquent_account(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    first = await flow.authorized(shop, buyer, 20_000, "monthly_6")
    # Collections and late fees are a later issue: make the plan delinquent directly.
    await flow.api.rt.db.execute(
        "UPDATE installments.plans SET status = 'delinquent' WHERE id = $1", first["plan_id"]
    )
    try:
        await declined(flow, shop, buyer, 20_000, "monthly_6", "delinquent_account")
    finally:
        await flow.api.rt.db.execute(
            "UPDATE installments.plans SET status = 'active' WHERE id = $1", first["plan_id"]
        )
    assert (await flow.authorized(shop, buyer, 20_000, "monthly_6"))["status"] == "authorized"


async def test_velocity_limit(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer(credit_limit=1_000_000)
    for _ in range(5):
        await flow.authorized(shop, buyer, 5_000, "monthly_6")
    body = await declined(flow, shop, buyer, 5_000, "monthly_6", "velocity_limit")
    row = await flow.decision(body["decision"]["id"])
    assert row["features"]["approved_checkouts_24h"] == 5


async def test_insufficient_credit_limit(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer(credit_limit=50_000)
    me = await flow.me(buyer)
    assert (me["credit_limit"], me["available_credit"]) == (50_000, 50_000)
    await declined(flow, shop, buyer, 60_000, "monthly_6", "insufficient_credit_limit")
    await declined(flow, shop, buyer, 50_001, "monthly_12", "insufficient_credit_limit")
    # Exactly at the limit is approved ...
    body = await flow.authorized(shop, buyer, 50_000, "monthly_6")
    assert body["decision"]["outcome"] == "approved"
    assert (await flow.me(buyer))["available_credit"] == 0
    # ... and then one more cent is not.
    await declined(flow, shop, buyer, 1_000, "pay_in_4", "insufficient_credit_limit")


async def test_risk_score_too_high(api: Api, flow: Flow) -> None:
    # Sandbox persona: the bureau scores `Risky` 300; digital goods (MCC 5816).
    digital = await api.active_merchant(mcc="5816")
    buyer = await flow.buyer(last_name="Risky")
    body = await declined(flow, digital, buyer, 40_000, "pay_in_4", "risk_score_too_high")
    row = await flow.decision(body["decision"]["id"])
    cutoff = api.rt.settings.effective_risk_cutoff
    assert cutoff is not None
    assert row["score"] is not None and row["score"] > cutoff
    assert row["model_version"]
    assert row["features"]["bureau_score"] == 300
    assert row["features"]["amount"] == 40_000
    # Nothing was charged for a decline before the down payment.
    charged = await api.rt.db.fetchval(
        "SELECT count(*) FROM payments.payments WHERE checkout_id = $1", body["id"]
    )
    assert charged == 0


@pytest.mark.parametrize("card", [DECLINED_CARD, NO_FUNDS_CARD])
async def test_payment_method_declined(flow: Flow, shop: MerchantHandle, card: str) -> None:
    buyer = await flow.buyer(card)
    body = await declined(flow, shop, buyer, 40_000, "pay_in_4", "payment_method_declined")
    row = await flow.decision(body["decision"]["id"])
    # The model approved; the down payment then failed.
    assert row["score"] is not None and row["model_version"]
    # No plan, and the exposure the approval took is released.
    me = await flow.me(buyer)
    assert me["available_credit"] == me["credit_limit"] == 100_000
    r = await flow.client.get("/v1/me/plans", headers=buyer.headers)
    assert r.json()["data"] == []
    # The failed down payment is on record, for nobody's plan.
    r = await flow.client.get("/v1/payments", headers=buyer.headers)
    [payment] = r.json()["data"]
    assert payment["kind"] == "down_payment" and payment["status"] == "failed"
    assert payment["plan_id"] is None
    assert payment["failure_code"] == (
        "card_declined" if card == DECLINED_CARD else "insufficient_funds"
    )
    assert await flow.gateway_charges(payment["id"]) and all(
        c["status"] == "declined" for c in await flow.gateway_charges(payment["id"])
    )
    # A good card afterwards works.
    good = await flow.api.add_card(buyer.handle)
    checkout = await flow.create(shop, 40_000)
    r = await flow.confirm_response(buyer, checkout["id"], "pay_in_4", pm=good)
    assert r.json()["status"] == "authorized", r.text


async def test_approved_decision_is_stored_with_its_inputs(
    flow: Flow, shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 30_000, "pay_in_4")
    row = await flow.decision(body["decision"]["id"])
    assert row["outcome"] == "approved" and list(row["reasons"]) == []
    assert row["checkout_id"] == body["id"] and row["consumer_id"] == buyer.id
    assert 0.0 <= row["score"] <= 1.0 and row["model_version"]
    assert row["features"]["amount"] == 30_000
    assert row["features"]["credit_limit"] == 100_000
    assert row["latency_ms"] >= 0


async def test_decisions_are_readable_by_the_operator(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    approved = await flow.authorized(shop, buyer, 30_000, "monthly_6")
    decision_id = approved["decision"]["id"]
    r = await flow.client.get(f"/v1/credit/decisions/{decision_id}", headers=flow.api.operator)
    if r.status_code == 404:
        pytest.skip("GET /v1/credit/decisions/{id} is not there yet (credit's work in progress)")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id"] == decision_id and body["outcome"] == "approved"
    assert body["consumer_id"] == buyer.id and body["checkout_id"] == approved["id"]
    assert body["reasons"] == [] and body["model_version"]
    assert {"score", "features", "latency_ms", "created_at"} <= set(body)
    r = await flow.client.get(f"/v1/credit/decisions/{decision_id}", headers=shop.headers)
    assert r.status_code in (403, 404)
