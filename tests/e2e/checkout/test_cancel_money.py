"""Money when an authorization ends without a capture (issue 14): a void or an expiry after the
consumer paid interest early, and a capture that arrives after the authorization expired.

On a platform whose scheduler never ticks by itself (`quiet_api`), so that an authorization
can be past its expiry before the expiry job has run.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest

from tests.e2e.checkout.helpers import Flow, monthly
from tests.support import Api, MerchantHandle, assert_problem

APR = 2999


@pytest.fixture(scope="module")
def flow(quiet_api: Api) -> Flow:
    return Flow(quiet_api)


@pytest.fixture(scope="module")
async def shop(quiet_api: Api) -> MerchantHandle:
    return await quiet_api.active_merchant(config={"monthly_apr_bps": APR})


async def balances(api: Api) -> dict[str, int]:
    r = await api.client.get(
        "/v1/ledger/balances", params={"currency": "USD"}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    return {b["account"]: b["balance"] for b in r.json()["data"]}


async def verify(api: Api) -> dict[str, Any]:
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def move_clock_to(api: Api, target: datetime) -> None:
    r = await api.client.post(
        "/v1/sandbox/clock", json={"to": target.isoformat()}, headers=api.operator
    )
    assert r.status_code == 200, r.text


async def test_a_void_after_an_early_payment_with_interest_gives_it_all_back(
    flow: Flow, shop: MerchantHandle
) -> None:
    api = flow.api
    before = await balances(api)
    buyer = await flow.buyer()
    checkout = await flow.authorized(shop, buyer, 60_000, "monthly_6")
    first = monthly(60_000, APR, 6, datetime.fromisoformat(checkout["authorized_at"]).date())[0]
    assert first.interest > 0
    r = await api.client.post(
        f"/v1/plans/{checkout['plan_id']}/payments",
        json={"kind": "next_installment", "payment_method_id": buyer.pm},
        headers=buyer.headers,
    )
    assert r.status_code == 201 and r.json()["amount"] == first.amount, r.text

    r = await flow.void(shop, checkout["id"])
    assert r.status_code == 200 and r.json()["status"] == "voided", r.text
    await api.settle()
    payments = await flow.payments(buyer, checkout["plan_id"])
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("installment", first.amount, "succeeded"),
        ("refund", first.amount, "succeeded"),
    ]
    after = await balances(api)
    moved = {k: after.get(k, 0) - before.get(k, 0) for k in set(after) | set(before)}
    # Nothing of the voided purchase is left owed to the merchant, and the interest it
    # earned went back with the rest.
    assert moved.get("merchant_authorized", 0) == 0
    assert moved.get("interest_revenue", 0) == 0
    assert moved.get("gateway_clearing", 0) == 0  # in with the payment, out with the refund
    body = await verify(api)
    assert body["ok"], [c for c in body["checks"] if not c["ok"]]
    assert "checkout.authorizations_settled" in [c["name"] for c in body["checks"]]


async def test_a_capture_after_the_authorization_expired_is_refused(
    flow: Flow, shop: MerchantHandle
) -> None:
    api = flow.api
    buyer = await flow.buyer()
    checkout = await flow.authorized(shop, buyer, 40_000)
    expires_at = datetime.fromisoformat(checkout["authorization_expires_at"])
    await move_clock_to(api, expires_at - timedelta(milliseconds=300))
    await asyncio.sleep(0.5)  # business time passes the expiry; the expiry job has not run
    assert api.rt.clock.now() > expires_at
    assert (await flow.checkout(shop, checkout["id"]))["status"] == "authorized"

    assert_problem(await flow.capture(shop, checkout["id"]), 409, "checkout_not_authorized")
    await move_clock_to(api, expires_at + timedelta(seconds=1))  # the expiry job runs
    await api.settle()
    assert (await flow.checkout(shop, checkout["id"]))["status"] == "expired"
    body = await verify(api)
    assert body["ok"], [c for c in body["checks"] if not c["ok"]]
