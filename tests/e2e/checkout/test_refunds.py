"""`POST /v1/checkouts/{id}/refunds`: any number of refunds up to the captured amount, each
allocated as DOMAIN.md says (unpaid principal from the last installment backwards, the rest
back to the consumer's card)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from tests.e2e.checkout.conftest import APR_BPS
from tests.e2e.checkout.helpers import Flow, after_release, call
from tests.support import MerchantHandle, assert_problem


async def refund_as_expected(
    flow: Flow, merchant: MerchantHandle, checkout: dict[str, Any], amount: int, status: str
) -> dict[str, Any]:
    """Refund `amount`; check the answer, the plan and the checkout against DOMAIN.md."""
    before = await flow.plan(checkout["plan_id"])
    expected, applied, to_consumer = after_release(before["installments"], amount)
    r = await flow.refund(merchant, checkout["id"], amount)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    assert body["id"].startswith("ref_")
    assert body["checkout_id"] == checkout["id"]
    assert (body["amount"], body["currency"]) == (amount, checkout["currency"])
    assert (body["applied_to_plan"], body["refunded_to_consumer"]) == (applied, to_consumer)
    assert body["reason"] == "returned_item"
    datetime.fromisoformat(body["created_at"])
    plan = await flow.plan(checkout["plan_id"])
    assert plan["installments"] == expected
    assert sum(i["principal"] for i in plan["installments"]) == plan["principal"]
    assert (await flow.checkout(merchant, checkout["id"]))["status"] == status
    return body


async def test_refunds_up_to_the_captured_amount(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    checkout = await flow.captured(shop, buyer, 40_000)
    first = await refund_as_expected(flow, shop, checkout, 5_000, "partially_refunded")
    assert (first["applied_to_plan"], first["refunded_to_consumer"]) == (5_000, 0)
    second = await refund_as_expected(flow, shop, checkout, 20_000, "partially_refunded")
    assert (second["applied_to_plan"], second["refunded_to_consumer"]) == (20_000, 0)
    assert (await flow.me(buyer))["available_credit"] == 100_000 - 5_000
    assert_problem(
        await flow.refund(shop, checkout["id"], 15_001), 422, "amount_exceeds_refundable"
    )
    third = await refund_as_expected(flow, shop, checkout, 15_000, "refunded")
    assert (third["applied_to_plan"], third["refunded_to_consumer"]) == (5_000, 10_000)

    plan = await flow.plan(checkout["plan_id"])
    assert plan["status"] == "refunded" and plan["outstanding_balance"] == 0
    assert [i["status"] for i in plan["installments"]] == [
        "paid",
        "canceled",
        "canceled",
        "canceled",
    ]
    final = await flow.checkout(shop, checkout["id"])
    assert (final["captured_amount"], final["refunded_amount"]) == (40_000, 40_000)
    assert (await flow.me(buyer))["available_credit"] == 100_000
    # Nothing is left to refund.
    assert_problem(await flow.refund(shop, checkout["id"], 1), 422, "amount_exceeds_refundable")

    await flow.api.settle()
    payments = await flow.payments(buyer, checkout["plan_id"])
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("down_payment", 10_000, "succeeded"),
        ("refund", 10_000, "succeeded"),
    ]
    [charge] = await flow.gateway_charges(payments[0]["id"])
    assert (charge["status"], charge["refunded_amount"]) == ("refunded", 10_000)

    # The merchant lists them, oldest first, page by page.
    r = await flow.client.get(
        f"/v1/checkouts/{checkout['id']}/refunds?limit=2", headers=shop.headers
    )
    assert r.status_code == 200, r.text
    page = r.json()
    assert [x["id"] for x in page["data"]] == [first["id"], second["id"]]
    assert page["has_more"] is True and page["next_cursor"] == second["id"]
    assert page["data"][0] == first
    r = await flow.client.get(
        f"/v1/checkouts/{checkout['id']}/refunds?starting_after={second['id']}",
        headers=shop.headers,
    )
    assert [x["id"] for x in r.json()["data"]] == [third["id"]]
    assert r.json()["has_more"] is False


async def test_refund_of_an_amortized_plan_waives_the_interest(
    flow: Flow, apr_shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    checkout = await flow.captured(apr_shop, buyer, 60_000, "monthly_12")
    await refund_as_expected(flow, apr_shop, checkout, 12_345, "partially_refunded")
    await refund_as_expected(flow, apr_shop, checkout, 60_000 - 12_345, "refunded")
    plan = await flow.plan(checkout["plan_id"])
    assert plan["status"] == "refunded" and plan["principal"] == 0
    assert all(i["status"] == "canceled" and i["amount_due"] == 0 for i in plan["installments"])
    assert plan["apr_bps"] == APR_BPS
    await flow.api.settle()
    assert await flow.payments(buyer, checkout["plan_id"]) == []


async def test_refund_after_a_partial_capture(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    checkout = await flow.captured(shop, buyer, 40_000, capture=30_000)
    assert_problem(
        await flow.refund(shop, checkout["id"], 30_001), 422, "amount_exceeds_refundable"
    )
    body = await refund_as_expected(flow, shop, checkout, 30_000, "refunded")
    assert (body["applied_to_plan"], body["refunded_to_consumer"]) == (20_000, 10_000)
    assert (await flow.plan(checkout["plan_id"]))["status"] == "refunded"


async def test_refund_needs_a_capture(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    authorized = await flow.authorized(shop, buyer, 20_000)
    assert_problem(await flow.refund(shop, authorized["id"], 100), 409, "checkout_not_captured")
    opened = await flow.create(shop, 20_000)
    assert_problem(await flow.refund(shop, opened["id"], 100), 409, "checkout_not_captured")
    r = await flow.client.get(f"/v1/checkouts/{authorized['id']}/refunds", headers=shop.headers)
    assert r.status_code == 200 and r.json()["data"] == []
    captured = await flow.captured(shop, buyer, 20_000)
    for bad in (
        {"amount": 0},
        {"amount": -5},
        {"amount": 1.5},
        {},
        {"amount": "5"},
        {"amount": 10**30},
    ):
        r = await flow.client.post(
            f"/v1/checkouts/{captured['id']}/refunds", json=bad, headers=shop.headers
        )
        assert_problem(r, 422, "validation_error")
    r = await flow.client.post(
        f"/v1/checkouts/{captured['id']}/refunds", json={"amount": 5}, headers=buyer.headers
    )
    assert_problem(r, 403, "forbidden")


async def test_racing_refunds_never_exceed_the_capture(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    checkout = await flow.captured(shop, buyer, 40_000, "monthly_6")
    answers = await asyncio.gather(*(flow.refund(shop, checkout["id"], 30_000) for _ in range(2)))
    assert sorted(r.status_code for r in answers) == [201, 422], [r.text for r in answers]
    answers = await asyncio.gather(*(flow.refund(shop, checkout["id"], 3_000) for _ in range(6)))
    assert sorted(r.status_code for r in answers) == [201] * 3 + [422] * 3
    final = await flow.checkout(shop, checkout["id"])
    assert final["refunded_amount"] == 39_000 and final["status"] == "partially_refunded"
    r = await flow.client.get(
        f"/v1/checkouts/{checkout['id']}/refunds?limit=100", headers=shop.headers
    )
    assert sum(x["amount"] for x in r.json()["data"]) == 39_000
    plan = await flow.plan(checkout["plan_id"])
    assert plan["principal"] == 1_000 and plan["status"] == "active"


async def test_refund_of_a_prepaid_plan_goes_back_to_the_card(
    flow: Flow, apr_shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    checkout = await flow.captured(apr_shop, buyer, 30_000, "monthly_6")
    r = await call(
        flow.client,
        "POST",
        f"/v1/plans/{checkout['plan_id']}/payments",
        json={"kind": "payoff", "payment_method_id": buyer.pm},
        headers=buyer.headers,
    )
    assert r.status_code == 201, r.text
    # Nothing is due yet: the payoff is the principal, the future interest is waived.
    assert r.json()["amount"] == 30_000 and r.json()["status"] == "succeeded"
    plan = await flow.plan(checkout["plan_id"])
    assert plan["status"] == "paid_off" and plan["outstanding_balance"] == 0

    body = await refund_as_expected(flow, apr_shop, checkout, 10_000, "partially_refunded")
    assert (body["applied_to_plan"], body["refunded_to_consumer"]) == (0, 10_000)
    body = await refund_as_expected(flow, apr_shop, checkout, 20_000, "refunded")
    assert (body["applied_to_plan"], body["refunded_to_consumer"]) == (0, 20_000)
    assert (await flow.plan(checkout["plan_id"]))["status"] == "refunded"
    await flow.api.settle()
    payments = await flow.payments(buyer, checkout["plan_id"])
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("prepayment", 30_000, "succeeded"),
        ("refund", 10_000, "succeeded"),
        ("refund", 20_000, "succeeded"),
    ]
    [charge] = await flow.gateway_charges(payments[0]["id"])
    assert (charge["status"], charge["refunded_amount"]) == ("refunded", 30_000)
    assert (await flow.me(buyer))["available_credit"] == 100_000


async def test_purchase_in_euros(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    checkout = await flow.create(shop, 30_001, currency="EUR")
    body = await flow.confirm(buyer, checkout["id"], "pay_in_4")
    assert body["status"] == "authorized" and body["currency"] == "EUR"
    plan = await flow.plan(body["plan_id"])
    assert plan["currency"] == "EUR"
    [down_payment] = await flow.payments(buyer, body["plan_id"])
    assert (down_payment["currency"], down_payment["amount"]) == ("EUR", 7_501)
    assert (await flow.capture(shop, body["id"], 30_000)).status_code == 200
    refund = await refund_as_expected(flow, shop, body, 30_000, "refunded")
    assert refund["currency"] == "EUR"
    assert (refund["applied_to_plan"], refund["refunded_to_consumer"]) == (22_499, 7_501)
