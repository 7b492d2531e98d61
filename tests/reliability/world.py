"""A small world of two merchants and two consumers, each owning one of every kind of object
(checkouts open, authorized and captured, a refund, a plan, payments, a card, a webhook
endpoint, events, a settlement, notifications), built over the public API. The contract and
authorization tests act on it as each principal, on their own and on the other side's ids."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.e2e.checkout.helpers import Buyer, Flow
from tests.support import Api, MerchantHandle


@dataclass
class Side:
    """One merchant and one consumer who bought from it, with the ids of what they own."""

    merchant: MerchantHandle
    buyer: Buyer
    ids: dict[str, str] = field(default_factory=dict)

    def __getitem__(self, kind: str) -> str:
        return self.ids[kind]


@dataclass
class World:
    a: Side
    b: Side
    revoked_key: str  # merchant A's key, revoked
    suspended: MerchantHandle  # a merchant suspended after its key was issued


async def _data(api: Api, path: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await api.client.get(path, headers=headers)
    assert r.status_code == 200, (path, r.text)
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def _side(api: Api, flow: Flow, hook_url: str) -> Side:
    merchant = await api.active_merchant()
    buyer = await flow.buyer()
    side = Side(merchant, buyer)
    captured = await flow.captured(merchant, buyer, 40_000)
    r = await flow.refund(merchant, captured["id"], 1_000)
    assert r.status_code == 201, r.text
    authorized = await flow.authorized(merchant, buyer, 20_000)
    opened = await flow.create(merchant, 30_000)
    r = await api.client.post(
        "/v1/webhook_endpoints", json={"url": hook_url, "events": ["*"]}, headers=merchant.headers
    )
    assert r.status_code == 201, r.text
    side.ids.update(
        merchant=merchant.id,
        consumer=buyer.id,
        payment_method=buyer.pm,
        checkout=captured["id"],
        checkout_authorized=authorized["id"],
        checkout_open=opened["id"],
        plan=captured["plan_id"],
        plan_authorized=authorized["plan_id"],
        decision=captured["decision"]["id"],
        endpoint=r.json()["id"],
    )
    refunds = await _data(api, f"/v1/checkouts/{captured['id']}/refunds", merchant.headers)
    side.ids["refund"] = refunds[0]["id"]
    payments = await _data(api, f"/v1/payments?plan_id={captured['plan_id']}", buyer.headers)
    side.ids["payment"] = payments[0]["id"]
    keys = await _data(api, f"/v1/merchants/{merchant.id}/api_keys", api.operator)
    side.ids["api_key"] = keys[0]["id"]
    return side


async def build_world(api: Api, hook_url: str = "http://127.0.0.1:9/hooks") -> World:
    """Both sides, then one day of business time (settlements), then the ids that needs."""
    flow = Flow(api)
    a = await _side(api, flow, hook_url)
    b = await _side(api, flow, hook_url)
    r = await api.client.post("/v1/sandbox/clock", json={"advance": "P1D"}, headers=api.operator)
    assert r.status_code == 200, r.text
    await api.settle()
    for side in (a, b):
        settlements = await _data(api, "/v1/settlements", side.merchant.headers)
        side.ids["settlement"] = settlements[0]["id"]
        events = await _data(api, "/v1/events", side.merchant.headers)
        side.ids["event"] = events[0]["id"]
        notes = await _data(api, "/v1/me/notifications", side.buyer.headers)
        side.ids["notification"] = notes[0]["id"]
        entries = await _data(
            api, f"/v1/ledger/entries?merchant_id={side.merchant.id}", api.operator
        )
        side.ids["ledger_entry"] = entries[0]["id"]

    # Merchant A's second key, revoked; a merchant suspended after its key was issued.
    r = await api.client.post(f"/v1/merchants/{a.merchant.id}/api_keys", headers=api.operator)
    assert r.status_code == 201, r.text
    revoked = r.json()
    r = await api.client.delete(
        f"/v1/merchants/{a.merchant.id}/api_keys/{revoked['id']}", headers=api.operator
    )
    assert r.status_code == 204, r.text
    suspended = await api.active_merchant()
    r = await api.client.patch(
        f"/v1/merchants/{suspended.id}", json={"status": "suspended"}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    return World(a, b, revoked["secret"], suspended)
