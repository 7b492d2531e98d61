"""`GET /v1/reports/summary` over HTTP (API.md "Reporting"): the figures of a period, from
events, and the plan book as it stands, for one merchant or all; recomputed here from what
the test did."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

from tests.e2e.checkout.helpers import Flow
from tests.e2e.collections.helpers import advance, purchase
from tests.support import Api, MerchantHandle, assert_problem

SOFT_AFTER_FIRST = "4000000000000341"  # the first charge succeeds, later ones insufficient_funds


async def summary(api: Api, **params: str) -> dict[str, Any]:
    r = await api.client.get("/v1/reports/summary", params=params, headers=api.operator)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def eventually(api: Api, expected: dict[str, Any], **params: str) -> dict[str, Any]:
    """The summary once it shows `expected` (API.md: within 5 s of the events)."""
    deadline = asyncio.get_running_loop().time() + 5
    while True:
        body = await summary(api, **params)
        if all(body[k] == v for k, v in expected.items()):
            return body
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"{body} never showed {expected}")
        await asyncio.sleep(0.05)


async def now(api: Api) -> datetime:
    r = await api.client.post("/v1/sandbox/clock", json={"advance": "PT0S"}, headers=api.operator)
    return datetime.fromisoformat(r.json()["now"].replace("Z", "+00:00"))


async def test_a_merchants_period_and_book(quiet_api: Api) -> None:
    api = quiet_api
    flow = Flow(api)
    shop: MerchantHandle = await api.active_merchant()
    start = (await now(api)).isoformat()

    sale = await purchase(api, merchant=shop, amount=40_000)  # pay_in_4: 10,000 paid now
    poor = await flow.buyer(credit_limit=5_000)
    declined = await flow.confirm(poor, (await flow.create(shop, 40_000))["id"], "pay_in_4")
    assert declined["status"] == "declined"
    await flow.create(shop, 7_000)  # created, never confirmed
    r = await flow.refund(shop, sale["checkout_id"], 5_000)
    assert r.status_code == 201, r.text

    body = await eventually(
        api, {"checkouts": 3, "refunded": 5_000}, merchant_id=shop.id, **{"from": start}
    )
    assert (body["authorized"], body["declined"], body["approval_rate"]) == (1, 1, 0.5)
    assert (body["gmv"], body["refunded"], body["late_fees"]) == (40_000, 5_000, 0)
    assert (body["active_plans"], body["delinquent_plans"]) == (1, 0)
    # 30,000 of principal after the down payment; the refund cut 5,000 of it.
    assert body["outstanding_receivables"] == 25_000
    assert body["collection_success_rate"] == 0.0  # nothing collected yet
    assert (body["currency"], body["merchant_id"]) == ("USD", shop.id)

    await advance(api, "P14D")  # installment 2 collected
    body = await summary(api, merchant_id=shop.id, **{"from": start})
    assert body["collection_success_rate"] == 1.0
    assert body["outstanding_receivables"] == 25_000 - 10_000
    # A period that ends before anything happened shows none of it; the book is as of now.
    before = await summary(api, merchant_id=shop.id, to=start)
    assert (before["checkouts"], before["gmv"], before["refunded"]) == (0, 0, 0)
    assert before["active_plans"] == 1


async def test_late_fees_delinquency_and_failed_collections(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    await purchase(api, merchant=shop, amount=20_000, card=SOFT_AFTER_FIRST)
    start = (await now(api) - timedelta(hours=1)).isoformat()
    await advance(api, "P25D")  # due on day 14, retried on 15, 17 and 21; late on day 24
    body = await summary(api, merchant_id=shop.id, **{"from": start})
    assert (body["late_fees"], body["delinquent_plans"], body["active_plans"]) == (700, 1, 0)
    assert body["collection_success_rate"] == 0.0
    # 15,000 principal unpaid and the 700 fee.
    assert body["outstanding_receivables"] == 15_700
    everyone = await summary(api)  # the operator's view covers this merchant too
    assert everyone["delinquent_plans"] >= 1 and everyone["late_fees"] >= 700


async def test_the_summary_is_for_operators_and_checks_its_query(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    r = await api.client.get("/v1/reports/summary", headers=shop.headers)
    assert_problem(r, 403, "forbidden")
    for params in (
        {"from": "2026-12-02T00:00:00Z", "to": "2026-12-01T00:00:00Z"},
        {"from": "yesterday"},
        {"to": "2026-12-01T00:00:00"},  # no time zone
        {"currency": "XYZ"},
    ):
        r = await api.client.get("/v1/reports/summary", params=params, headers=api.operator)
        assert r.status_code in (400, 422), (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
