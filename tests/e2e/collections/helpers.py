"""Purchases and clock moves for the collection scenarios (public API only)."""

from __future__ import annotations

import calendar
import json
from datetime import UTC, date, datetime, timedelta
from fractions import Fraction
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


# --------------------------------------------------------------------------- scenario kit
# (Added for the collections scenarios; everything above is shared with other suites.)

GOOD_CARD = "4242424242424242"
HARD_DECLINE_CARD = "4000000000000002"  # card_declined on every charge
NO_FUNDS_CARD = "4000000000009995"  # insufficient_funds on every charge
FIRST_ONLY_CARD = "4000000000000341"  # first charge succeeds, later ones insufficient_funds
FLAKY_CARD = "4000000000000119"  # 500 twice per charge, then success
TIMEOUT_CARD = "4000000000006975"  # first answer held 30 s, but captured

APR_BPS = 1999


async def start_day(api: Api) -> date:
    """Move business time to noon (UTC) of the next day and return that day.

    Far from midnight, so due dates (UTC dates) never depend on when the test runs.
    """
    r = await api.client.post("/v1/sandbox/clock", json={"advance": "PT0S"}, headers=api.operator)
    assert r.status_code == 200, r.text
    now = datetime.fromisoformat(r.json()["now"])
    day = now.date() + timedelta(days=1)
    await advance_to(api, day)
    return day


async def advance_to(api: Api, day: date, hour: int = 12) -> str:
    """Move business time to `hour`:00 UTC of `day` (running everything due on the way)."""
    target = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
    r = await api.client.post(
        "/v1/sandbox/clock", json={"to": target.isoformat()}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    now: str = r.json()["now"]
    return now


async def authorize(
    api: Api,
    *,
    merchant: MerchantHandle,
    consumer: ConsumerHandle,
    pm: str,
    amount: int,
    plan: str,
) -> dict[str, Any]:
    """A confirmed (authorized, not captured) checkout; returns the checkout JSON."""
    r = await api.client.post(
        "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=merchant.headers
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/checkouts/{r.json()['id']}/confirm",
        json={"plan": plan, "payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def payments_of(api: Api, plan_id: str) -> list[dict[str, Any]]:
    """Every payment of the plan, oldest first (all pages)."""
    found: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"plan_id": plan_id, "limit": 100}
        if cursor:
            params["starting_after"] = cursor
        r = await api.client.get("/v1/payments", params=params, headers=api.operator)
        assert r.status_code == 200, r.text
        page = r.json()
        found += page["data"]
        if not page["has_more"]:
            return found
        cursor = page["data"][-1]["id"]


async def events_of(api: Api, aggregate_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of the outbox events of one aggregate, in order."""
    async with api.rt.db.connection() as conn:
        rows = await conn.fetch(
            "SELECT type, data FROM messaging.events WHERE aggregate_id = $1 ORDER BY id",
            aggregate_id,
        )
    return [
        (r["type"], json.loads(r["data"]) if isinstance(r["data"], str) else r["data"])
        for r in rows
    ]


async def balances(api: Api) -> dict[str, int]:
    r = await api.client.get(
        "/v1/ledger/balances", params={"currency": "USD"}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    return {b["account"]: b["balance"] for b in r.json()["data"]}


async def entries_for(api: Api, reference_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/v1/ledger/entries", params={"reference_id": reference_id}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


def credited(entry: dict[str, Any], account: str) -> int:
    return sum(
        line["amount"]
        for line in entry["lines"]
        if line["account"] == account and line["side"] == "credit"
    )


async def pay(
    api: Api,
    consumer: ConsumerHandle,
    plan_id: str,
    kind: str,
    pm: str,
    key: str | None = None,
) -> Any:
    """POST /v1/plans/{id}/payments as the consumer; returns the raw response."""
    headers = dict(consumer.headers)
    if key is not None:
        headers["Idempotency-Key"] = key
    return await api.client.post(
        f"/v1/plans/{plan_id}/payments",
        json={"kind": kind, "payment_method_id": pm},
        headers=headers,
    )


async def set_payment_method(
    api: Api, consumer: ConsumerHandle, plan_id: str, pm: str
) -> dict[str, Any]:
    r = await api.client.put(
        f"/v1/plans/{plan_id}/payment_method",
        json={"payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def attempt_dates(payment: dict[str, Any]) -> list[date]:
    return [datetime.fromisoformat(a["at"]).date() for a in payment["attempts"]]


# DOMAIN.md's schedule arithmetic, recomputed here (exact Fractions, never the platform's code).


def round_half_up(value: Fraction) -> int:
    assert value >= 0
    q, r = divmod(value.numerator, value.denominator)
    return q + 1 if 2 * r >= value.denominator else q


def add_months(start: date, months: int) -> date:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


def pay_in_4_schedule(principal: int, d: date) -> list[tuple[date, int, int]]:
    """(due date, principal, interest) per installment."""
    regular = principal // 4
    first = principal - 3 * regular
    return [(d + timedelta(days=14 * k), first if k == 0 else regular, 0) for k in range(4)]


def monthly_schedule(principal: int, apr_bps: int, n: int, d: date) -> list[tuple[date, int, int]]:
    r = Fraction(apr_bps, 10_000 * 12)
    dues = [add_months(d, k) for k in range(1, n + 1)]
    if r == 0:
        regular = principal // n
        first = principal - (n - 1) * regular
        return [(due, first if k == 0 else regular, 0) for k, due in enumerate(dues)]
    payment = round_half_up(principal * r / (1 - (1 + r) ** -n))
    lines, balance = [], principal
    for k, due in enumerate(dues, start=1):
        interest = round_half_up(balance * r)
        part = balance if k == n else payment - interest
        lines.append((due, part, interest))
        balance -= part
    assert balance == 0
    return lines
