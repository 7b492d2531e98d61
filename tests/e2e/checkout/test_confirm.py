"""`POST /v1/checkouts/{id}/confirm`: the plan, its exact schedule, and never two plans."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.e2e.checkout.conftest import APR_BPS
from tests.e2e.checkout.helpers import (
    Flow,
    business_date,
    expected_installments,
    monthly,
    pay_in_4,
)
from tests.support import Api, MerchantHandle, assert_problem


async def test_pay_in_4_schedule_and_down_payment(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    amount = 40_003  # the 3 remainder cents go to installment 1
    checkout = await flow.create(shop, amount)
    body = await flow.confirm(buyer, checkout["id"], "pay_in_4")
    assert body["status"] == "authorized"
    assert body["plan_id"].startswith("pln_")
    assert body["decision"]["id"].startswith("dec_")
    assert body["decision"]["outcome"] == "approved"
    assert body["decision"].get("reasons", []) == []
    assert body["available_plans"] == []
    assert body["plan"] == "pay_in_4" and body["consumer_id"] == buyer.id

    d = business_date(body)
    plan = await flow.plan(body["plan_id"])
    assert plan["installments"] == expected_installments(pay_in_4(amount, d), first_paid=True)
    assert [i["due_date"] for i in plan["installments"]] == [
        (d + timedelta(days=k)).isoformat() for k in (0, 14, 28, 42)
    ]
    assert [i["principal"] for i in plan["installments"]] == [10_003, 10_000, 10_000, 10_000]
    assert plan["status"] == "active" and plan["plan"] == "pay_in_4"
    assert plan["checkout_id"] == checkout["id"] and plan["consumer_id"] == buyer.id
    assert plan["merchant_id"] == shop.id and plan["currency"] == "USD"
    assert plan["principal"] == amount and plan["apr_bps"] == 0
    assert plan["outstanding_balance"] == 30_000 and plan["late_fees_total"] == 0
    assert plan["payment_method_id"] == buyer.pm

    # The down payment, as the consumer sees it.
    [payment] = await flow.payments(buyer, body["plan_id"])
    assert payment["id"].startswith("pay_")
    assert payment["kind"] == "down_payment" and payment["status"] == "succeeded"
    assert payment["amount"] == 10_003 and payment["currency"] == "USD"
    assert payment["plan_id"] == body["plan_id"] and payment["failure_code"] is None
    assert [a["outcome"] for a in payment["attempts"]] == ["succeeded"]
    # ... and as the gateway saw it: charged once.
    charges = await flow.gateway_charges(payment["id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(10_003, "captured")]
    # Its event names the plan it paid (the payment is settled once the plan exists).
    [event] = await flow.api.rt.db.fetch(
        "SELECT aggregate_id, data FROM messaging.events "
        "WHERE type = 'payment.succeeded' AND data->>'payment_id' = $1",
        payment["id"],
    )
    assert event["aggregate_id"] == body["plan_id"]
    assert event["data"]["plan_id"] == body["plan_id"]
    assert event["data"]["kind"] == "down_payment" and event["data"]["amount"] == 10_003

    # The plan is readable by its consumer and merchant, nobody else.
    for headers in (buyer.headers, shop.headers):
        r = await flow.client.get(f"/v1/plans/{body['plan_id']}", headers=headers)
        assert r.status_code == 200 and r.json() == plan
    stranger = await flow.api.consumer()
    r = await flow.client.get(f"/v1/plans/{body['plan_id']}", headers=stranger.headers)
    assert_problem(r, 404, "not_found")
    # Exposure: the unpaid 30,000 counts against the default limit of 100,000.
    me = await flow.me(buyer)
    assert (me["credit_limit"], me["available_credit"]) == (100_000, 70_000)


async def test_monthly_12_amortized_schedule(flow: Flow, apr_shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    amount = 93_457
    checkout = await flow.create(apr_shop, amount)
    body = await flow.confirm(buyer, checkout["id"], "monthly_12")
    assert body["status"] == "authorized", body
    d = business_date(body)
    plan = await flow.plan(body["plan_id"])
    expected = monthly(amount, APR_BPS, 12, d)
    assert plan["installments"] == expected_installments(expected, first_paid=False)
    assert sum(i["principal"] for i in plan["installments"]) == amount
    assert plan["apr_bps"] == APR_BPS and plan["principal"] == amount
    assert plan["outstanding_balance"] == sum(line.amount for line in expected)
    # The regular installment is the amortized payment offered at checkout creation.
    [offer] = [p for p in checkout["available_plans"] if p["plan"] == "monthly_12"]
    assert all(line.amount == offer["installment_amount"] for line in expected[:-1])
    # No down payment on a monthly plan: nothing charged, the whole principal counts.
    assert await flow.payments(buyer, body["plan_id"]) == []
    me = await flow.me(buyer)
    assert me["available_credit"] == 100_000 - amount


async def test_monthly_6_zero_apr_schedule(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    amount = 50_005
    body = await flow.authorized(shop, buyer, amount, "monthly_6")
    plan = await flow.plan(body["plan_id"])
    expected = monthly(amount, 0, 6, business_date(body))
    assert [line.principal for line in expected] == [8_335] + [8_334] * 5
    assert plan["installments"] == expected_installments(expected, first_paid=False)
    assert plan["installments"][0]["principal"] == amount - 5 * (amount // 6)


async def test_second_confirm_is_409_and_never_a_second_plan(
    flow: Flow, shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    checkout = await flow.create(shop, 20_000)
    first = await flow.confirm(buyer, checkout["id"], "pay_in_4")
    assert first["status"] == "authorized"
    for plan in ("pay_in_4", "monthly_6"):
        r = await flow.confirm_response(buyer, checkout["id"], plan)
        assert_problem(r, 409, "checkout_not_open")
    other = await flow.buyer()
    assert_problem(
        await flow.confirm_response(other, checkout["id"], "pay_in_4"), 409, "checkout_not_open"
    )
    assert await flow.plans_of_checkout(checkout["id"]) == 1
    assert len(await flow.payments(buyer, first["plan_id"])) == 1


async def test_racing_confirms_authorize_once(flow: Flow, shop: MerchantHandle) -> None:
    for plan in ("pay_in_4", "monthly_6"):
        buyer = await flow.buyer()
        checkout = await flow.create(shop, 30_000)
        answers = await asyncio.gather(
            *(flow.confirm_response(buyer, checkout["id"], plan) for _ in range(4))
        )
        ok = [r for r in answers if r.status_code == 200]
        assert len(ok) == 1, [r.text for r in answers]
        assert ok[0].json()["status"] == "authorized"
        for r in answers:
            if r.status_code != 200:
                assert_problem(r, 409, "checkout_not_open")
        assert await flow.plans_of_checkout(checkout["id"]) == 1
        decisions = await flow.api.rt.db.fetchval(
            "SELECT count(*) FROM credit.decisions WHERE checkout_id = $1", checkout["id"]
        )
        assert decisions == 1
        down_payments = await flow.api.rt.db.fetchval(
            "SELECT count(*) FROM payments.payments WHERE checkout_id = $1", checkout["id"]
        )
        assert down_payments == (1 if plan == "pay_in_4" else 0)


async def test_plan_not_offered_by_the_merchant(api: Api, flow: Flow) -> None:
    merchant = await api.active_merchant(config={"plans": ["pay_in_4"]})
    buyer = await flow.buyer()
    checkout = await flow.create(merchant, 20_000)
    assert [p["plan"] for p in checkout["available_plans"]] == ["pay_in_4"]
    for plan in ("monthly_6", "monthly_12"):
        assert_problem(
            await flow.confirm_response(buyer, checkout["id"], plan), 422, "plan_not_available"
        )
    # Still open, and confirmable with the plan on offer.
    assert (await flow.checkout(merchant, checkout["id"]))["status"] == "open"
    assert (await flow.confirm(buyer, checkout["id"], "pay_in_4"))["status"] == "authorized"


async def test_confirm_needs_a_consumer_and_a_valid_body(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    other = await flow.buyer()
    checkout = await flow.create(shop, 20_000)
    url = f"/v1/checkouts/{checkout['id']}/confirm"
    good = {"plan": "pay_in_4", "payment_method_id": buyer.pm}
    assert_problem(await flow.client.post(url, json=good), 401, "unauthenticated")
    assert_problem(await flow.client.post(url, json=good, headers=shop.headers), 403, "forbidden")
    for bad in (
        {"plan": "pay_in_5", "payment_method_id": buyer.pm},
        {"plan": "pay_in_4"},
        {"payment_method_id": buyer.pm},
        {"plan": 4, "payment_method_id": buyer.pm},
        {"plan": "pay_in_4", "payment_method_id": ["pm"]},
    ):
        r = await flow.client.post(url, json=bad, headers=buyer.headers)
        assert r.status_code in (400, 422), r.text
        assert_problem(r, r.status_code, "validation_error")
    # Someone else's card is no card of this consumer.
    r = await flow.confirm_response(buyer, checkout["id"], "pay_in_4", pm=other.pm)
    assert r.status_code == 422, r.text
    assert_problem(await flow.confirm_response(buyer, "chk_nope", "pay_in_4"), 404, "not_found")
    assert (await flow.checkout(shop, checkout["id"]))["status"] == "open"
