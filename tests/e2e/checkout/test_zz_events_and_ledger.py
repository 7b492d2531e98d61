"""Events, audit records and the ledger after the purchase flows. Named to run last in the
package: its final test verifies the ledger over everything the checkout tests did."""

from __future__ import annotations

from typing import Any

from tests.e2e.checkout.helpers import DECLINED_CARD, Flow
from tests.support import MerchantHandle


async def test_events_and_audit_of_a_purchase(flow: Flow, shop: MerchantHandle) -> None:
    buyer = await flow.buyer()
    body = await flow.captured(shop, buyer, 40_000, capture=36_000)
    checkout_id, plan_id = body["id"], body["plan_id"]
    for amount in (6_000, 30_000):
        r = await flow.refund(shop, checkout_id, amount)
        assert r.status_code == 201, r.text
    await flow.api.settle()

    assert await flow.events(checkout_id) == [
        "checkout.created",
        "checkout.authorized",
        "checkout.captured",
        "checkout.refunded",
        "checkout.refunded",
    ]
    plan_events = [t for t in await flow.events(plan_id) if t.startswith("plan.")]
    assert plan_events[0] == "plan.created"
    assert plan_events[-1] == "plan.refunded"
    rows = await flow.api.rt.db.fetch(
        "SELECT type, data, merchant_id, consumer_id FROM messaging.events "
        "WHERE aggregate_id = $1 ORDER BY id",
        checkout_id,
    )
    for row in rows:
        assert row["merchant_id"] == shop.id
        assert row["data"]["id"] == checkout_id
    assert rows[1]["consumer_id"] == buyer.id and rows[1]["data"]["plan_id"] == plan_id
    assert rows[2]["data"]["captured_amount"] == 36_000
    assert [r["data"]["refund_amount"] for r in rows[3:]] == [6_000, 30_000]
    assert rows[-1]["data"]["status"] == "refunded"

    merchant, consumer = f"merchant:{shop.id}", f"consumer:{buyer.id}"
    assert await flow.audit_actions(checkout_id) == [
        (merchant, "checkout.created"),
        (consumer, "checkout.authorized"),
        (merchant, "checkout.captured"),
        (merchant, "checkout.refunded"),
        (merchant, "checkout.refunded"),
    ]


async def test_events_and_audit_of_a_decline_and_a_void(flow: Flow, shop: MerchantHandle) -> None:
    loser = await flow.buyer(DECLINED_CARD)
    lost = await flow.create(shop, 20_000)
    assert (await flow.confirm(loser, lost["id"], "pay_in_4"))["status"] == "declined"
    assert await flow.events(lost["id"]) == ["checkout.created", "checkout.declined"]
    assert await flow.audit_actions(lost["id"]) == [
        (f"merchant:{shop.id}", "checkout.created"),
        (f"consumer:{loser.id}", "checkout.declined"),
    ]

    buyer = await flow.buyer()
    body = await flow.authorized(shop, buyer, 20_000)
    assert (await flow.void(shop, body["id"])).status_code == 200
    await flow.api.settle()
    assert await flow.events(body["id"]) == [
        "checkout.created",
        "checkout.authorized",
        "checkout.voided",
    ]
    plan_events = await flow.events(body["plan_id"])
    assert plan_events[0] == "plan.created" and "plan.canceled" in plan_events
    assert await flow.audit_actions(body["id"]) == [
        (f"merchant:{shop.id}", "checkout.created"),
        (f"consumer:{buyer.id}", "checkout.authorized"),
        (f"merchant:{shop.id}", "checkout.voided"),
    ]
    r = await flow.client.get("/v1/audit/verify", headers=flow.api.operator)
    assert r.status_code == 200 and r.json()["ok"] is True, r.text


async def test_zz_ledger_verifies_after_every_flow(flow: Flow) -> None:
    """Runs last: the journal balances and agrees with the plans and the checkouts."""
    await flow.api.settle()
    r = await flow.client.get("/v1/ledger/verify", headers=flow.api.operator)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    failing = [c for c in body["checks"] if not c["ok"]]
    assert body["ok"] is True and failing == [], failing
    names = {c["name"] for c in body["checks"]}
    assert {"ledger.trial_balance_zero", "checkout.merchant_payable"} <= names
    assert any(n.startswith("installments.") for n in names), names

    # Independently: consumer_receivable = unpaid principal of the open plans, per currency.
    r = await flow.client.get("/v1/ledger/balances", headers=flow.api.operator)
    assert r.status_code == 200, r.text
    raw = r.json()
    balances = raw["data"] if isinstance(raw, dict) and "data" in raw else raw
    booked = {
        b["currency"]: b["balance"] for b in balances if b["account"] == "consumer_receivable"
    }
    rows = await flow.api.rt.db.fetch(
        "SELECT p.currency, sum(i.principal - i.principal_paid) AS unpaid "
        "FROM installments.installments i JOIN installments.plans p ON p.id = i.plan_id "
        "WHERE p.status IN ('active', 'delinquent') AND i.status IN ('scheduled', 'late') "
        "GROUP BY p.currency"
    )
    unpaid = {r["currency"]: int(r["unpaid"]) for r in rows}
    for currency in set(booked) | set(unpaid):
        assert booked.get(currency, 0) == unpaid.get(currency, 0), currency
