"""Expiries on the scheduler, driven by the sandbox clock (`POST /v1/sandbox/clock`).

The clock only moves forward and moves for everyone on its database, so these tests run on a
platform of their own (`iso_api`: its own database, hence its own clock); every expectation
is computed from the checkout's own `expires_at` / `authorization_expires_at`.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pytest

from bnpl.providers import CardGateway, ChargeOutcome, ChargeResult
from tests.e2e.checkout.helpers import Flow
from tests.support import Api, MerchantHandle, assert_problem


@pytest.fixture(scope="module")
def iso_flow(iso_api: Api) -> Flow:
    return Flow(iso_api)


@pytest.fixture(scope="module")
async def iso_shop(iso_api: Api) -> MerchantHandle:
    return await iso_api.active_merchant()


async def move_clock_to(api: Api, target: datetime) -> datetime:
    r = await api.client.post(
        "/v1/sandbox/clock", json={"to": target.isoformat()}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    return datetime.fromisoformat(r.json()["now"])


async def test_open_checkout_expires_after_an_hour(
    iso_flow: Flow, iso_shop: MerchantHandle
) -> None:
    api = iso_flow.api
    buyer = await iso_flow.buyer()
    checkout = await iso_flow.create(iso_shop, 20_000)
    expires_at = datetime.fromisoformat(checkout["expires_at"])
    assert expires_at == datetime.fromisoformat(checkout["created_at"]) + timedelta(hours=1)

    await move_clock_to(api, expires_at - timedelta(minutes=1))
    assert (await iso_flow.checkout(iso_shop, checkout["id"]))["status"] == "open"
    await move_clock_to(api, expires_at + timedelta(seconds=1))
    body = await iso_flow.checkout(iso_shop, checkout["id"])
    assert body["status"] == "expired" and body["available_plans"] == []
    assert_problem(
        await iso_flow.confirm_response(buyer, checkout["id"], "pay_in_4"), 409, "checkout_not_open"
    )
    assert await iso_flow.plans_of_checkout(checkout["id"]) == 0
    assert await iso_flow.events(checkout["id"]) == ["checkout.created", "checkout.expired"]
    assert await iso_flow.audit_actions(checkout["id"]) == [
        (f"merchant:{iso_shop.id}", "checkout.created"),
        ("system", "checkout.expired"),
    ]
    r = await api.client.get("/v1/checkouts?status=expired", headers=iso_shop.headers)
    assert checkout["id"] in [c["id"] for c in r.json()["data"]]


async def test_uncaptured_authorization_expires_after_7_days(
    iso_flow: Flow, iso_shop: MerchantHandle
) -> None:
    api = iso_flow.api
    buyer = await iso_flow.buyer()
    body = await iso_flow.authorized(iso_shop, buyer, 40_000)
    captured_one = await iso_flow.authorized(iso_shop, buyer, 20_000, "monthly_6")
    r = await iso_flow.capture(iso_shop, captured_one["id"])
    assert r.status_code == 200, r.text
    authorized_at = datetime.fromisoformat(body["authorized_at"])
    expires_at = datetime.fromisoformat(body["authorization_expires_at"])
    assert expires_at == authorized_at + timedelta(days=7)
    assert (await iso_flow.me(buyer))["available_credit"] == 100_000 - 30_000 - 20_000

    await move_clock_to(api, expires_at - timedelta(minutes=1))
    assert (await iso_flow.checkout(iso_shop, body["id"]))["status"] == "authorized"
    assert (await iso_flow.plan(body["plan_id"]))["status"] == "active"
    await move_clock_to(api, expires_at + timedelta(seconds=1))
    await api.settle()

    assert (await iso_flow.checkout(iso_shop, body["id"]))["status"] == "expired"
    plan = await iso_flow.plan(body["plan_id"])
    assert plan["status"] == "canceled" and plan["outstanding_balance"] == 0
    assert [i["status"] for i in plan["installments"]] == [
        "paid",
        "canceled",
        "canceled",
        "canceled",
    ]
    payments = await iso_flow.payments(buyer, body["plan_id"])
    assert [(p["kind"], p["amount"], p["status"]) for p in payments] == [
        ("down_payment", 10_000, "succeeded"),
        ("refund", 10_000, "succeeded"),
    ]
    [charge] = await iso_flow.gateway_charges(payments[0]["id"])
    assert (charge["status"], charge["refunded_amount"]) == ("refunded", 10_000)
    assert (await iso_flow.me(buyer))["available_credit"] == 100_000 - 20_000
    # A captured checkout does not expire.
    assert (await iso_flow.checkout(iso_shop, captured_one["id"]))["status"] == "captured"
    # It is over for the merchant too.
    assert_problem(await iso_flow.capture(iso_shop, body["id"]), 409, "checkout_not_authorized")
    assert_problem(await iso_flow.void(iso_shop, body["id"]), 409, "checkout_not_authorized")
    assert await iso_flow.events(body["id"]) == [
        "checkout.created",
        "checkout.authorized",
        "checkout.expired",
    ]
    assert "plan.canceled" in await iso_flow.events(body["plan_id"])
    assert (await iso_flow.audit_actions(body["id"]))[-1] == ("system", "checkout.expired")


@dataclass
class LostAnswers:
    """A gateway whose charges go through but whose answers never arrive (an outage between
    us and the gateway): the card is charged, the platform only sees timeouts."""

    real: CardGateway

    async def charge(
        self, token: str, amount: int, currency: str, idempotency_key: str
    ) -> ChargeResult:
        await self.real.charge(token, amount, currency, idempotency_key)
        return ChargeResult(ChargeOutcome.TRANSIENT, "timeout", None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.fixture
def outage(iso_api: Api) -> Iterator[None]:
    providers = iso_api.rt.providers
    real = providers.gateway
    providers.gateway = LostAnswers(real)  # type: ignore[assignment]
    try:
        yield
    finally:
        providers.gateway = real


async def test_confirmation_interrupted_by_an_outage_is_resumed_without_a_second_charge(
    iso_flow: Flow, iso_shop: MerchantHandle, outage: None, iso_api: Api
) -> None:
    buyer = await iso_flow.buyer()
    checkout = await iso_flow.create(iso_shop, 40_000)
    r = await iso_flow.confirm_response(buyer, checkout["id"], "pay_in_4")
    assert_problem(r, 503, "payment_processing")
    assert r.headers["Retry-After"]
    # In flight: still `open` to the outside, its amount held against the limit.
    seen = await iso_flow.checkout(iso_shop, checkout["id"])
    assert seen["status"] == "open" and seen["plan_id"] is None
    assert (await iso_flow.me(buyer))["available_credit"] == 100_000 - 40_000
    assert_problem(
        await iso_flow.confirm_response(buyer, checkout["id"], "pay_in_4"), 409, "checkout_not_open"
    )
    payment = await iso_api.rt.db.fetchrow(
        "SELECT id, status FROM payments.payments WHERE checkout_id = $1", checkout["id"]
    )
    assert payment is not None and payment["status"] == "processing"
    # What the gateway was asked is on record.
    attempts = await iso_api.rt.db.fetch(
        "SELECT outcome FROM payments.attempts WHERE payment_id = $1 ORDER BY n", payment["id"]
    )
    assert attempts and all(a["outcome"] == "transient" for a in attempts)

    # The gateway answers again; a minute later the confirmation is resumed with the same key.
    iso_api.rt.providers.gateway = iso_api.rt.providers.gateway.real  # type: ignore[attr-defined]
    await move_clock_to(iso_api, iso_api.rt.clock.now() + timedelta(minutes=1, seconds=5))
    await iso_api.settle()
    body = await iso_flow.checkout(iso_shop, checkout["id"])
    assert body["status"] == "authorized" and body["plan_id"], body
    plan = await iso_flow.plan(body["plan_id"])
    assert plan["installments"][0]["status"] == "paid" and plan["outstanding_balance"] == 30_000
    [down_payment] = await iso_flow.payments(buyer, body["plan_id"])
    assert down_payment["status"] == "succeeded" and down_payment["id"] == payment["id"]
    charges = await iso_flow.gateway_charges(payment["id"])
    assert [(c["amount"], c["status"]) for c in charges] == [(10_000, "captured")]
    assert (await iso_flow.me(buyer))["available_credit"] == 100_000 - 30_000
    assert await iso_flow.events(checkout["id"]) == ["checkout.created", "checkout.authorized"]
    assert (await iso_flow.audit_actions(checkout["id"]))[-1] == ("system", "checkout.authorized")


async def test_ledger_of_the_isolated_platform_still_reconciles(iso_flow: Flow) -> None:
    await iso_flow.api.settle()
    r = await iso_flow.client.get("/v1/ledger/verify", headers=iso_flow.api.operator)
    assert r.status_code == 200, r.text
    failing = [c for c in r.json()["checks"] if not c["ok"]]
    assert r.json()["ok"] is True and failing == []
