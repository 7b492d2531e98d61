"""Helpers of the credit integration tests: applications decided directly through the facade."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime
from typing import Any

from bnpl import credit
from bnpl.credit import CreditApplication
from bnpl.kit.ids import new_id
from bnpl.providers.http import HttpCreditBureau
from bnpl.runtime import Runtime
from tests.support import Api, ConsumerHandle, MerchantHandle, unique


def application(consumer_id: str | None = None, **changes: Any) -> CreditApplication:
    """A monthly_6 application that passes rules 1-6 for a consumer with a fresh account;
    `changes` break the rules a test is about."""
    base = CreditApplication(
        consumer_id=consumer_id or new_id("cus"),
        checkout_id=new_id("chk"),
        merchant_id="mer_test",
        amount=10_000,
        currency="USD",
        plan="monthly_6",
        amount_range=None,
        merchant_category="5941",
        kyc_status="verified",
        date_of_birth=date(1990, 6, 15),
        consumer_since=datetime(2026, 1, 1, tzinfo=UTC),
        has_delinquent_plan=False,
        first_name="Ada",
        last_name="Lovelace",
        country="US",
    )
    return dataclasses.replace(base, **changes)


async def checkout(api: Api, merchant: MerchantHandle, amount: int = 20_000) -> str:
    r = await api.client.post(
        "/v1/checkouts",
        json={"amount": amount, "currency": "USD", "merchant_reference": unique("order-")},
        headers=merchant.headers,
    )
    assert r.status_code == 201, r.text
    checkout_id: str = r.json()["id"]
    return checkout_id


async def purchase(
    api: Api,
    merchant: MerchantHandle,
    consumer: ConsumerHandle,
    payment_method_id: str,
    *,
    amount: int = 20_000,
    plan: str = "monthly_6",
) -> dict[str, Any]:
    """Create a checkout and confirm it; the confirmed checkout's JSON."""
    checkout_id = await checkout(api, merchant, amount)
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": plan, "payment_method_id": payment_method_id},
        headers=consumer.headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def decision(api: Api, decision_id: str) -> dict[str, Any]:
    r = await api.client.get(f"/v1/credit/decisions/{decision_id}", headers=api.operator)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def bureau(rt: Runtime) -> HttpCreditBureau:
    """The sandbox bureau's HTTP adapter (to read the simulator's call counter)."""
    inner = credit.engine(rt).bureau.inner
    assert isinstance(inner, HttpCreditBureau)
    return inner
