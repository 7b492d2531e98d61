"""`POST /v1/checkouts/{id}/capture`: full and partial; the released part is allocated to the
plan from the last installment backwards, its excess paid back to the consumer."""

from __future__ import annotations

from tests.e2e.checkout.conftest import APR_BPS
from tests.e2e.checkout.helpers import (
    DECLINED_CARD,
    Flow,
    after_release,
    business_date,
    expected_installments,
    monthly,
    pay_in_4,
)
from tests.support import MerchantHandle, assert_problem


async def test_full_capture(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 40_000)
    before = await flow.plan(body["plan_id"])
    r = await flow.capture(shop, body["id"])
    assert r.status_code == 200, r.text
    captured = r.json()
    assert captured["status"] == "captured" and captured["captured_amount"] == 40_000
    assert captured["plan_id"] == body["plan_id"] and captured["refunded_amount"] == 0
    assert await flow.plan(body["plan_id"]) == before  # nothing released
    assert (await flow.checkout(shop, body["id"]))["status"] == "captured"
    # Once only.
    assert_problem(await flow.capture(shop, body["id"]), 409, "checkout_not_authorized")
    assert_problem(await flow.capture(shop, body["id"], 100), 409, "checkout_not_authorized")


async def test_explicit_full_amount(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 20_000, "monthly_6")
    r = await flow.capture(shop, body["id"], 20_000)
    assert r.status_code == 200 and r.json()["captured_amount"] == 20_000


async def test_partial_capture_releases_from_the_last_installment(
    flow: Flow, shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    amount, capture = 40_001, 25_000
    body = await flow.authorized(shop, buyer, amount)
    before = await flow.plan(body["plan_id"])
    assert before["installments"] == expected_installments(
        pay_in_4(amount, business_date(body)), first_paid=True
    )
    r = await flow.capture(shop, body["id"], capture)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "captured" and r.json()["captured_amount"] == capture
    plan = await flow.plan(body["plan_id"])
    expected, applied, to_consumer = after_release(before["installments"], amount - capture)
    assert (applied, to_consumer) == (15_001, 0)
    assert plan["installments"] == expected
    assert [(i["principal"], i["status"]) for i in plan["installments"]] == [
        (10_001, "paid"),
        (10_000, "scheduled"),
        (4_999, "scheduled"),
        (0, "canceled"),
    ]
    assert plan["principal"] == capture and plan["status"] == "active"
    assert plan["outstanding_balance"] == 14_999
    # The released principal no longer counts against the limit; nothing went back to the card.
    assert (await flow.me(buyer))["available_credit"] == 100_000 - 14_999
    await flow.api.settle()
    assert [p["kind"] for p in await flow.payments(buyer, body["plan_id"])] == ["down_payment"]


async def test_partial_capture_beyond_the_unpaid_principal_pays_the_consumer_back(
    flow: Flow, shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 40_000)
    before = await flow.plan(body["plan_id"])
    r = await flow.capture(shop, body["id"], 1_000)
    assert r.status_code == 200, r.text
    plan = await flow.plan(body["plan_id"])
    expected, applied, to_consumer = after_release(before["installments"], 39_000)
    assert (applied, to_consumer) == (30_000, 9_000)
    assert plan["installments"] == expected
    assert [i["status"] for i in plan["installments"]] == [
        "paid",
        "canceled",
        "canceled",
        "canceled",
    ]
    assert plan["outstanding_balance"] == 0 and plan["status"] == "paid_off"
    assert (await flow.me(buyer))["available_credit"] == 100_000

    await flow.api.settle()
    payments = await flow.payments(buyer, body["plan_id"])
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("down_payment", 10_000, "succeeded"),
        ("refund", 9_000, "succeeded"),
    ]
    # The gateway paid 9,000 of the 10,000 charge back.
    [charge] = await flow.gateway_charges(payments[0]["id"])
    assert (charge["amount"], charge["refunded_amount"]) == (10_000, 9_000)
    refunds = await flow.api.rt.db.fetch(
        "SELECT amount FROM sandbox.refunds WHERE charge_id = $1", charge["id"]
    )
    assert [r["amount"] for r in refunds] == [9_000]


async def test_partial_capture_of_an_amortized_plan(flow: Flow, apr_shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    amount, capture = 60_000, 45_000
    body = await flow.authorized(apr_shop, buyer, amount, "monthly_12")
    before = await flow.plan(body["plan_id"])
    assert before["installments"] == expected_installments(
        monthly(amount, APR_BPS, 12, business_date(body)), first_paid=False
    )
    r = await flow.capture(apr_shop, body["id"], capture)
    assert r.status_code == 200, r.text
    plan = await flow.plan(body["plan_id"])
    expected, applied, to_consumer = after_release(before["installments"], amount - capture)
    assert (applied, to_consumer) == (15_000, 0)
    assert plan["installments"] == expected
    assert sum(i["principal"] for i in plan["installments"]) == plan["principal"] == capture
    # Canceled installments owe nothing, not even their interest.
    for inst in plan["installments"]:
        if inst["status"] == "canceled":
            assert inst["amount_due"] == 0
    assert plan["outstanding_balance"] == sum(i["amount_due"] for i in expected)
    assert (await flow.me(buyer))["available_credit"] == 100_000 - capture


async def test_capture_conflicts_and_limits(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 20_000)
    assert_problem(await flow.capture(shop, body["id"], 20_001), 422, "amount_exceeds_authorized")
    for bad in (0, -1, 100.5, "100", 10**30, True):
        r = await flow.client.post(
            f"/v1/checkouts/{body['id']}/capture", json={"amount": bad}, headers=shop.headers
        )
        assert_problem(r, 422, "validation_error")
    assert (await flow.checkout(shop, body["id"]))["status"] == "authorized"
    # Nothing to capture on an open or a declined checkout.
    opened = await flow.create(shop, 20_000)
    assert_problem(await flow.capture(shop, opened["id"]), 409, "checkout_not_authorized")
    loser = await flow.buyer(DECLINED_CARD)
    lost = await flow.create(shop, 20_000)
    assert (await flow.confirm(loser, lost["id"], "pay_in_4"))["status"] == "declined"
    assert_problem(await flow.capture(shop, lost["id"]), 409, "checkout_not_authorized")
    # Only the merchant captures.
    r = await flow.client.post(f"/v1/checkouts/{body['id']}/capture", headers=buyer.headers)
    assert_problem(r, 403, "forbidden")
    assert_problem(await flow.capture(shop, "chk_nope"), 404, "not_found")
