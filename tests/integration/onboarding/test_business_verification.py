"""Business verification (KYB): applied -> verified/rejected -> merchant active/rejected."""

from __future__ import annotations

from typing import Any

from bnpl.messaging import Event
from bnpl.onboarding import handlers
from bnpl.runtime import Runtime
from tests.integration.merchants.helpers import bus_paused
from tests.support import Api, assert_problem, unique


async def _events(rt: Runtime, merchant_id: str) -> list[dict[str, Any]]:
    rows = await rt.db.fetch(
        "SELECT type, data, merchant_id FROM messaging.events WHERE aggregate_id = $1 ORDER BY id",
        merchant_id,
    )
    return [dict(r) for r in rows]


async def test_a_verified_business_becomes_active(api: Api, rt: Runtime) -> None:
    merchant = await api.create_merchant()
    await api.settle()
    r = await api.client.get(f"/v1/merchants/{merchant['id']}", headers=api.operator)
    assert r.json()["status"] == "active"
    assert r.json()["rejection_reason"] is None

    r = await api.client.get(
        f"/v1/onboarding/business_verifications/{merchant['id']}", headers=api.operator
    )
    assert r.status_code == 200, r.text
    verification = r.json()
    assert verification["id"].startswith("kyb_")
    assert verification["status"] == "verified"
    assert verification["provider_reference"]
    assert verification["decided_at"]

    events = await _events(rt, merchant["id"])
    assert [e["type"] for e in events] == [
        "merchant.applied",
        "onboarding.business_verified",
        "merchant.activated",
    ]
    applied, _, activated = events
    assert applied["data"]["legal_name"] == merchant["legal_name"]
    assert applied["merchant_id"] == merchant["id"]
    assert activated["merchant_id"] == merchant["id"]
    assert activated["data"]["status"] == "active"
    assert "000123456789" not in str([e["data"] for e in events])


async def test_a_rejected_business_is_rejected_with_a_reason(api: Api, rt: Runtime) -> None:
    merchant = await api.create_merchant(legal_name=f"REJECT Me {unique()} Inc")
    await api.settle()
    r = await api.client.get(f"/v1/merchants/{merchant['id']}", headers=api.operator)
    body = r.json()
    assert body["status"] == "rejected"
    assert body["rejection_reason"]

    r = await api.client.get(
        f"/v1/onboarding/business_verifications/{merchant['id']}", headers=api.operator
    )
    assert r.json()["status"] == "rejected"
    assert r.json()["reason"] == body["rejection_reason"]

    events = await _events(rt, merchant["id"])
    assert [e["type"] for e in events] == [
        "merchant.applied",
        "onboarding.business_rejected",
        "merchant.rejected",
    ]
    assert events[2]["data"]["rejection_reason"] == body["rejection_reason"]
    assert events[2]["merchant_id"] == merchant["id"]

    r = await api.client.get(
        "/v1/audit", params={"entity_id": merchant["id"]}, headers=api.operator
    )
    actions = [(a["actor"], a["action"]) for a in r.json()["data"]]
    assert ("system", "merchant.rejected") in actions
    assert ("system", "business_verification.rejected") in actions


async def test_redelivery_changes_nothing(api: Api, rt: Runtime) -> None:
    async with bus_paused(rt):
        merchant = await api.create_merchant()
        await api.settle()
    row = await rt.db.fetchrow(
        "SELECT event_id, type, aggregate_id, data, occurred_at, merchant_id, consumer_id, "
        "position FROM messaging.events WHERE aggregate_id = $1 AND type = 'merchant.applied'",
        merchant["id"],
    )
    assert row is not None
    event = Event.from_row(row)
    # Run the handler again outside the inbox (as if a second, identical application came in).
    async with rt.db.transaction() as conn:
        await handlers.verify_business(rt)(conn, event)
    await api.settle()
    events = await _events(rt, merchant["id"])
    assert [e["type"] for e in events] == [
        "merchant.applied",
        "onboarding.business_verified",
        "merchant.activated",
    ]
    count = await rt.db.fetchval(
        "SELECT count(*) FROM onboarding.business_verifications WHERE merchant_id = $1",
        merchant["id"],
    )
    assert count == 1


async def test_verification_endpoint_is_for_operators(api: Api) -> None:
    merchant = await api.active_merchant()
    url = f"/v1/onboarding/business_verifications/{merchant.id}"
    assert_problem(await api.client.get(url), 401, "unauthenticated")
    assert_problem(await api.client.get(url, headers=merchant.headers), 403, "forbidden")
    r = await api.client.get("/v1/onboarding/business_verifications/mer_nope", headers=api.operator)
    assert_problem(r, 404, "not_found")
