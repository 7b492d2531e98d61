"""`POST /v1/checkouts/{id}/void`: the plan is canceled and the consumer repaid."""

from __future__ import annotations

from tests.e2e.checkout.helpers import Flow
from tests.support import MerchantHandle, assert_problem


async def test_void_pay_in_4_repays_the_down_payment(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 40_002)
    assert (await flow.me(buyer))["available_credit"] == 100_000 - 30_000
    r = await flow.void(shop, body["id"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "voided" and r.json()["plan_id"] == body["plan_id"]
    plan = await flow.plan(body["plan_id"])
    assert plan["status"] == "canceled"
    assert [i["status"] for i in plan["installments"]] == [
        "paid",
        "canceled",
        "canceled",
        "canceled",
    ]
    assert plan["outstanding_balance"] == 0
    assert sum(i["principal"] for i in plan["installments"]) == plan["principal"]
    assert (await flow.me(buyer))["available_credit"] == 100_000

    await flow.api.settle()
    payments = await flow.payments(buyer, body["plan_id"])
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("down_payment", 10_002, "succeeded"),
        ("refund", 10_002, "succeeded"),
    ]
    # The gateway's own record: the charge is refunded in full, once.
    [charge] = await flow.gateway_charges(payments[0]["id"])
    assert (charge["status"], charge["refunded_amount"]) == ("refunded", 10_002)
    refunds = await flow.api.rt.db.fetchval(
        "SELECT count(*) FROM sandbox.refunds WHERE charge_id = $1", charge["id"]
    )
    assert refunds == 1

    # Final: no second void, no capture, no refund.
    assert_problem(await flow.void(shop, body["id"]), 409, "checkout_not_authorized")
    assert_problem(await flow.capture(shop, body["id"]), 409, "checkout_not_authorized")
    assert_problem(await flow.refund(shop, body["id"], 100), 409, "checkout_not_captured")


async def test_void_monthly_plan_repays_nothing(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 30_000, "monthly_6")
    r = await flow.void(shop, body["id"])
    assert r.status_code == 200 and r.json()["status"] == "voided"
    plan = await flow.plan(body["plan_id"])
    assert plan["status"] == "canceled"
    assert all(i["status"] == "canceled" for i in plan["installments"])
    await flow.api.settle()
    assert await flow.payments(buyer, body["plan_id"]) == []
    assert (await flow.me(buyer))["available_credit"] == 100_000


async def test_void_only_an_authorization(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    captured = await flow.captured(shop, buyer, 20_000)
    assert_problem(await flow.void(shop, captured["id"]), 409, "checkout_not_authorized")
    assert (await flow.plan(captured["plan_id"]))["status"] == "active"
    opened = await flow.create(shop, 20_000)
    assert_problem(await flow.void(shop, opened["id"]), 409, "checkout_not_authorized")
    r = await flow.client.post(f"/v1/checkouts/{captured['id']}/void", headers=buyer.headers)
    assert_problem(r, 403, "forbidden")
