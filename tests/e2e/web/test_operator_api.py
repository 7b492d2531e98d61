"""The two operator lists the dashboard reads that API.md does not name: dead-lettered events
and failed webhook sends (operator only)."""

from __future__ import annotations

import asyncio

from tests.support import Api, assert_problem


async def test_dead_letters_and_webhook_failures_are_for_operators(api: Api) -> None:
    shop = await api.active_merchant()
    for path in ("/v1/dead_letters", "/v1/webhook_failures"):
        assert_problem(await api.client.get(path, headers=shop.headers), 403, "forbidden")
        assert_problem(await api.client.get(path), 401, "unauthenticated")
        listed = await api.client.get(path, params={"limit": 5}, headers=api.operator)
        assert listed.status_code == 200, listed.text
        assert set(listed.json()) == {"data", "has_more", "next_cursor"}


async def test_a_webhook_to_nowhere_is_listed_as_failing(api: Api) -> None:
    shop = await api.active_merchant()
    made = await api.client.post(
        "/v1/webhook_endpoints",
        json={"url": "http://127.0.0.1:9/nothing-listens-here", "events": ["checkout.created"]},
        headers=shop.headers,
    )
    assert made.status_code == 201, made.text
    checkout = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=shop.headers
    )
    await api.settle()
    found: list[dict[str, object]] = []
    for _ in range(100):  # the sender's first attempt, within moments
        listed = await api.client.get(
            "/v1/webhook_failures", params={"limit": 100}, headers=api.operator
        )
        found = [f for f in listed.json()["data"] if f["endpoint_id"] == made.json()["id"]]
        if found:
            break
        await asyncio.sleep(0.1)
    assert found, "the failed delivery never showed"
    assert found[0]["merchant_id"] == shop.id
    assert found[0]["event_type"] == "checkout.created"
    assert found[0]["attempts"] >= 1 and found[0]["last_status_code"] is None
    assert checkout.status_code == 201
