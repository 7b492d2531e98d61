"""The gateway's misbehaving test cards at confirm: transient failures are retried within the
attempt with the same idempotency key, so the card is charged exactly once."""

from __future__ import annotations

import pytest

from tests.e2e.checkout.helpers import FLAKY_CARD, TIMEOUT_CARD, Flow
from tests.support import MerchantHandle


@pytest.mark.parametrize(
    ("card", "outcomes"),
    [
        (FLAKY_CARD, ["transient", "transient", "succeeded"]),  # 500, 500, then success
        (TIMEOUT_CARD, ["transient", "succeeded"]),  # no answer in 2 s, captured anyway
    ],
)
async def test_transient_failures_charge_once(
    flow: Flow, shop: MerchantHandle, card: str, outcomes: list[str]
) -> None:
    buyer = await flow.buyer(card)
    body = await flow.authorized(shop, buyer, 40_000)
    assert body["decision"]["outcome"] == "approved"
    [payment] = await flow.payments(buyer, body["plan_id"])
    assert (payment["kind"], payment["amount"], payment["status"]) == (
        "down_payment",
        10_000,
        "succeeded",
    )
    assert [a["outcome"] for a in payment["attempts"]] == outcomes
    charges = await flow.gateway_charges(payment["id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(10_000, "captured")]
    assert charges[0]["idempotency_key"].startswith(payment["id"])
    # The simulator's record, as the operator reads it.
    r = await flow.client.get(
        f"/v1/sandbox/gateway/charges?payment_method_id={buyer.pm}", headers=flow.api.operator
    )
    assert r.status_code == 200, r.text
    assert [(c["amount"], c["status"]) for c in r.json()["data"]] == [(10_000, "captured")]
    plan = await flow.plan(body["plan_id"])
    assert plan["installments"][0]["status"] == "paid"
    assert plan["outstanding_balance"] == 30_000
