"""`Idempotency-Key` on the money-moving POSTs: a retried request is answered with the first
answer and nothing happens twice (API.md, "Conventions")."""

from __future__ import annotations

import asyncio
import secrets

from tests.e2e.checkout.helpers import Flow, call
from tests.support import MerchantHandle, assert_problem


def key() -> dict[str, str]:
    return {"Idempotency-Key": f"k-{secrets.token_hex(8)}"}


async def test_retried_confirm_capture_and_refund_happen_once(
    flow: Flow, shop: MerchantHandle
) -> None:
    buyer = await flow.buyer()
    checkout = await flow.create(shop, 40_000)
    confirm_key = key()
    url = f"/v1/checkouts/{checkout['id']}/confirm"
    payload = {"plan": "pay_in_4", "payment_method_id": buyer.pm}
    first = await call(
        flow.client, "POST", url, json=payload, headers={**buyer.headers, **confirm_key}
    )
    assert first.status_code == 200 and first.json()["status"] == "authorized", first.text
    again = await call(
        flow.client, "POST", url, json=payload, headers={**buyer.headers, **confirm_key}
    )
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await call(
        flow.client,
        "POST",
        url,
        json={**payload, "plan": "monthly_6"},
        headers={**buyer.headers, **confirm_key},
    )
    assert_problem(other, 409, "idempotency_key_reused")
    plan_id = first.json()["plan_id"]
    assert await flow.plans_of_checkout(checkout["id"]) == 1
    [down_payment] = await flow.payments(buyer, plan_id)
    assert len(await flow.gateway_charges(down_payment["id"])) == 1

    capture_key = key()
    capture_url = f"/v1/checkouts/{checkout['id']}/capture"
    answers = [
        await flow.client.post(
            capture_url, json={"amount": 36_000}, headers={**shop.headers, **capture_key}
        )
        for _ in range(2)
    ]
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].json() == answers[1].json()
    assert answers[1].headers.get("Idempotent-Replayed") == "true"

    refund_key = key()
    refund_url = f"/v1/checkouts/{checkout['id']}/refunds"
    refunds = await asyncio.gather(
        *(
            flow.client.post(
                refund_url, json={"amount": 6_000}, headers={**shop.headers, **refund_key}
            )
            for _ in range(3)
        )
    )
    done = [r for r in refunds if r.status_code == 201]
    assert done, [r.text for r in refunds]
    assert all(r.json() == done[0].json() for r in done)
    for r in refunds:
        if r.status_code != 201:
            assert_problem(r, 409, "idempotency_request_in_progress")
    final = await flow.checkout(shop, checkout["id"])
    assert (final["captured_amount"], final["refunded_amount"]) == (36_000, 6_000)
    r = await flow.client.get(refund_url, headers=shop.headers)
    assert [x["id"] for x in r.json()["data"]] == [done[0].json()["id"]]


async def test_capture_racing_void_one_wins(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    for _ in range(3):
        body = await flow.authorized(shop, buyer, 20_000)
        captured, voided = await asyncio.gather(
            flow.capture(shop, body["id"]), flow.void(shop, body["id"])
        )
        codes = sorted([captured.status_code, voided.status_code])
        assert codes == [200, 409], (captured.text, voided.text)
        loser = voided if voided.status_code == 409 else captured
        assert_problem(loser, 409, "checkout_not_authorized")
        status = (await flow.checkout(shop, body["id"]))["status"]
        plan = await flow.plan(body["plan_id"])
        assert (status, plan["status"]) in (("captured", "active"), ("voided", "canceled"))
    await flow.api.settle()
