"""`POST /v1/checkouts` and the merchant's reads (API.md, "Checkouts")."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.checkout.conftest import APR_BPS
from tests.e2e.checkout.helpers import Flow, amortized_payment
from tests.support import Api, MerchantHandle, assert_problem, bearer


async def test_created_checkout_is_open_for_an_hour_with_the_plans_on_offer(
    flow: Flow, apr_shop: MerchantHandle
) -> None:
    amount = 40_003
    body = await flow.create(
        apr_shop,
        amount,
        merchant_reference="order-1001",
        items=[
            {"name": "Tent", "sku": "T-1", "quantity": 1, "unit_price": 40_000},
            {"name": "Pegs", "quantity": 3, "unit_price": 1},
        ],
        consumer_email="ada@example.com",
        success_url="https://acme.example/ok",
        cancel_url="https://acme.example/cancel",
    )
    assert body["id"].startswith("chk_")
    assert body["status"] == "open"
    assert body["amount"] == amount and body["currency"] == "USD"
    assert body["merchant_id"] == apr_shop.id
    assert body["merchant_reference"] == "order-1001"
    created = datetime.fromisoformat(body["created_at"])
    assert created.utcoffset() == timedelta(0)
    assert datetime.fromisoformat(body["expires_at"]) == created + timedelta(hours=1)
    assert body["available_plans"] == [
        {"plan": "pay_in_4", "installment_amount": amount // 4, "installments": 4, "apr_bps": 0},
        {
            "plan": "monthly_6",
            "installment_amount": amortized_payment(amount, APR_BPS, 6),
            "installments": 6,
            "apr_bps": APR_BPS,
        },
        {
            "plan": "monthly_12",
            "installment_amount": amortized_payment(amount, APR_BPS, 12),
            "installments": 12,
            "apr_bps": APR_BPS,
        },
    ]
    assert body["plan_id"] is None and body["decision"] is None
    # The merchant reads it back the same.
    again = await flow.checkout(apr_shop, body["id"])
    assert again["status"] == "open" and again["available_plans"] == body["available_plans"]
    assert again["expires_at"] == body["expires_at"]


async def test_only_the_plans_the_merchant_offers_for_the_amount(
    api: Api, flow: Flow, shop: MerchantHandle
) -> None:
    # 3,000 is pay_in_4 only (monthly plans start at 5,000); 0 APR shows as P // n.
    small = await flow.create(shop, 3_000)
    assert [p["plan"] for p in small["available_plans"]] == ["pay_in_4"]
    assert small["available_plans"][0]["installment_amount"] == 750
    # 300,000 is above pay_in_4's 200,000.
    big = await flow.create(shop, 300_001)
    assert big["available_plans"] == [
        {"plan": "monthly_6", "installment_amount": 50_000, "installments": 6, "apr_bps": 0},
        {"plan": "monthly_12", "installment_amount": 25_000, "installments": 12, "apr_bps": 0},
    ]
    only_monthly = await api.active_merchant(config={"plans": ["monthly_12"]})
    body = await flow.create(only_monthly, 60_000)
    assert [p["plan"] for p in body["available_plans"]] == ["monthly_12"]
    assert_problem(
        await flow.client.post(
            "/v1/checkouts", json={"amount": 4_000, "currency": "USD"}, headers=only_monthly.headers
        ),
        422,
        "amount_out_of_range",
    )


async def test_items_must_add_up_to_the_amount(flow: Flow, shop: MerchantHandle) -> None:
    r = await flow.client.post(
        "/v1/checkouts",
        json={
            "amount": 40_000,
            "currency": "USD",
            "items": [{"name": "Tent", "quantity": 2, "unit_price": 19_999}],
        },
        headers=shop.headers,
    )
    assert_problem(r, 422, "amount_mismatch")
    # Without items there is nothing to add up.
    await flow.create(shop, 40_000)


@pytest.mark.parametrize("amount", [999, 1_000_001])
async def test_amount_outside_every_plan_is_out_of_range(
    flow: Flow, shop: MerchantHandle, amount: int
) -> None:
    r = await flow.client.post(
        "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=shop.headers
    )
    assert_problem(r, 422, "amount_out_of_range")


async def test_the_merchant_range_narrows_the_plans(api: Api, flow: Flow) -> None:
    narrow = await api.active_merchant(config={"min_amount": 10_000, "max_amount": 50_000})
    for amount in (9_999, 50_001):
        r = await flow.client.post(
            "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=narrow.headers
        )
        assert_problem(r, 422, "amount_out_of_range")
    body = await flow.create(narrow, 10_000)
    assert [p["plan"] for p in body["available_plans"]] == ["pay_in_4", "monthly_6", "monthly_12"]


@pytest.mark.parametrize("currency", ["XYZ", "JPY", "usd"])
async def test_unsupported_currency(flow: Flow, shop: MerchantHandle, currency: str) -> None:
    r = await flow.client.post(
        "/v1/checkouts", json={"amount": 40_000, "currency": currency}, headers=shop.headers
    )
    assert_problem(r, 422, "unsupported_currency")


@pytest.mark.parametrize("currency", ["EUR", "GBP", "CAD", "AUD"])
async def test_every_supported_currency(flow: Flow, shop: MerchantHandle, currency: str) -> None:
    body = await flow.create(shop, 12_345, currency=currency)
    assert body["currency"] == currency and body["status"] == "open"


MALFORMED: list[Any] = [
    {"amount": -1, "currency": "USD"},
    {"amount": 0, "currency": "USD"},
    {"amount": 10**30, "currency": "USD"},
    {"amount": 2**63, "currency": "USD"},
    {"amount": 400.5, "currency": "USD"},
    {"amount": 40000.25, "currency": "USD"},  # a whole 40000.0 is the integer (kit.wire)
    {"amount": "40000", "currency": "USD"},
    {"amount": True, "currency": "USD"},
    {"amount": None, "currency": "USD"},
    {"currency": "USD"},
    {"amount": 40_000},
    {"amount": 40_000, "currency": 840},
    {"amount": 40_000, "currency": "US"},
    {"amount": 40_000, "currency": "USD", "items": "tent"},
    {"amount": 40_000, "currency": "USD", "items": [{"name": "Tent", "unit_price": 40_000}]},
    {
        "amount": 40_000,
        "currency": "USD",
        "items": [{"name": "Tent", "quantity": -1, "unit_price": -40_000}],
    },
    {
        "amount": 40_000,
        "currency": "USD",
        "items": [{"name": "Tent", "quantity": 1, "unit_price": 4e4 + 0.5}],
    },
    {"amount": 40_000, "currency": "USD", "consumer_email": "not an email"},
    [],
    "40000",
    None,
]


@pytest.mark.parametrize("payload", MALFORMED)
async def test_malformed_requests_are_problems_never_500(
    flow: Flow, shop: MerchantHandle, payload: Any
) -> None:
    r = await flow.client.post("/v1/checkouts", json=payload, headers=shop.headers)
    assert r.status_code in (400, 422), r.text
    body = assert_problem(r, r.status_code)
    assert body["code"] == "validation_error"


async def test_bad_json_is_400(flow: Flow, shop: MerchantHandle) -> None:
    r = await flow.client.post(
        "/v1/checkouts",
        content=b'{"amount": 40000, "currency": ',
        headers={**shop.headers, "content-type": "application/json"},
    )
    assert_problem(r, 400, "validation_error")


async def test_who_may_create_and_read_a_checkout(
    api: Api, flow: Flow, shop: MerchantHandle, other_shop: MerchantHandle
) -> None:
    payload = {"amount": 40_000, "currency": "USD"}
    assert_problem(await flow.client.post("/v1/checkouts", json=payload), 401, "unauthenticated")
    assert_problem(
        await flow.client.post("/v1/checkouts", json=payload, headers=bearer("sk_test_nope")),
        401,
        "unauthenticated",
    )
    buyer = await flow.buyer()
    assert_problem(
        await flow.client.post("/v1/checkouts", json=payload, headers=buyer.headers),
        403,
        "forbidden",
    )
    assert_problem(await flow.client.get("/v1/checkouts", headers=buyer.headers), 403, "forbidden")

    mine = await flow.create(shop, 40_000)
    # Another merchant, and a consumer who has not confirmed it, see nothing.
    for headers in (other_shop.headers, buyer.headers):
        assert_problem(
            await flow.client.get(f"/v1/checkouts/{mine['id']}", headers=headers), 404, "not_found"
        )
    for action in ("capture", "void"):
        r = await flow.client.post(
            f"/v1/checkouts/{mine['id']}/{action}", headers=other_shop.headers
        )
        assert_problem(r, 404, "not_found")
    assert_problem(await flow.refund(other_shop, mine["id"], 100), 404, "not_found")
    r = await flow.client.get(f"/v1/checkouts/{mine['id']}/refunds", headers=other_shop.headers)
    assert_problem(r, 404, "not_found")
    assert_problem(
        await flow.client.get("/v1/checkouts/chk_doesnotexist", headers=shop.headers),
        404,
        "not_found",
    )
    # The operator may read any checkout; the consumer who confirmed it may read it.
    r = await flow.client.get(f"/v1/checkouts/{mine['id']}", headers=api.operator)
    assert r.status_code == 200 and r.json()["id"] == mine["id"]
    confirmed = await flow.confirm(buyer, mine["id"], "pay_in_4")
    r = await flow.client.get(f"/v1/checkouts/{mine['id']}", headers=buyer.headers)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == confirmed["status"] == "authorized"
    # ... and not another consumer.
    stranger = await api.consumer()
    assert_problem(
        await flow.client.get(f"/v1/checkouts/{mine['id']}", headers=stranger.headers),
        404,
        "not_found",
    )


async def test_list_by_status_with_pagination(api: Api, flow: Flow) -> None:
    merchant = await api.active_merchant()
    opened = [(await flow.create(merchant, 10_000 + i))["id"] for i in range(5)]
    buyer = await flow.buyer()
    authorized = await flow.confirm(buyer, opened[1], "pay_in_4")
    assert authorized["status"] == "authorized"
    still_open = [c for c in opened if c != opened[1]]

    seen: list[str] = []
    cursor: str | None = None
    while True:
        url = "/v1/checkouts?status=open&limit=2" + (f"&starting_after={cursor}" if cursor else "")
        r = await flow.client.get(url, headers=merchant.headers)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) <= 2
        assert all(c["status"] == "open" for c in page["data"])
        seen += [c["id"] for c in page["data"]]
        if not page["has_more"]:
            break
        assert page["next_cursor"] == page["data"][-1]["id"]
        cursor = page["next_cursor"]
    assert seen == still_open

    r = await flow.client.get("/v1/checkouts?status=authorized", headers=merchant.headers)
    assert [c["id"] for c in r.json()["data"]] == [opened[1]]
    assert r.json()["data"][0]["plan_id"] == authorized["plan_id"]
    r = await flow.client.get("/v1/checkouts?limit=100", headers=merchant.headers)
    assert [c["id"] for c in r.json()["data"]] == opened
    assert r.json()["has_more"] is False
    r = await flow.client.get("/v1/checkouts?status=captured", headers=merchant.headers)
    assert r.json()["data"] == []
    for bad in ("status=shipped", "limit=0", "limit=101", "limit=abc"):
        r = await flow.client.get(f"/v1/checkouts?{bad}", headers=merchant.headers)
        assert_problem(r, 422)
