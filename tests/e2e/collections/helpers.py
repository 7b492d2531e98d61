"""Purchases and clock moves for the collection scenarios (public API only)."""

from __future__ import annotations

from typing import Any

from tests.support import Api, ConsumerHandle, MerchantHandle


async def purchase(
    api: Api,
    *,
    card: str = "4242424242424242",
    amount: int = 40_000,
    plan: str = "pay_in_4",
    merchant: MerchantHandle | None = None,
    consumer: ConsumerHandle | None = None,
) -> dict[str, Any]:
    """An authorized, captured purchase; returns ids and handles."""
    merchant = merchant or await api.active_merchant()
    consumer = consumer or await api.consumer()
    pm = await api.add_card(consumer, card)
    r = await api.client.post(
        "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=merchant.headers
    )
    assert r.status_code == 201, r.text
    checkout_id = r.json()["id"]
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": plan, "payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/capture", json={}, headers=merchant.headers
    )
    assert r.status_code == 200, r.text
    return {
        "checkout_id": checkout_id,
        "plan_id": r.json()["plan_id"],
        "pm": pm,
        "merchant": merchant,
        "consumer": consumer,
    }


async def advance(api: Api, duration: str) -> str:
    r = await api.client.post("/v1/sandbox/clock", json={"advance": duration}, headers=api.operator)
    assert r.status_code == 200, r.text
    now: str = r.json()["now"]
    return now


async def plan(api: Api, plan_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/plans/{plan_id}", headers=api.operator)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def charges(api: Api, pm: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/v1/sandbox/gateway/charges", params={"payment_method_id": pm}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def ledger_ok(api: Api) -> None:
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    assert r.status_code == 200 and r.json()["ok"], r.text
