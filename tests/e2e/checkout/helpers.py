"""Helpers of the checkout e2e tests: the purchase flow over HTTP, and DOMAIN.md's arithmetic
recomputed here, independently of the platform's own code (exact `Fraction`s, no floats).
"""

from __future__ import annotations

import asyncio
import calendar
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from fractions import Fraction
from typing import Any

import httpx

from tests.support import Api, ConsumerHandle, MerchantHandle

GOOD_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"  # card_declined (hard)
NO_FUNDS_CARD = "4000000000009995"  # insufficient_funds (soft)
FLAKY_CARD = "4000000000000119"  # 500 twice per charge, then success
TIMEOUT_CARD = "4000000000006975"  # first answer held 30 s, but captured

# --------------------------------------------------------------------------- arithmetic


def round_half_up(value: Fraction) -> int:
    """DOMAIN.md rounding for a non-negative exact rational: 0.5 goes up."""
    assert value >= 0
    q, r = divmod(value.numerator, value.denominator)
    return q + 1 if 2 * r >= value.denominator else q


def add_months(start: date, months: int) -> date:
    month0 = start.month - 1 + months
    year, month = start.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(start.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class Line:
    """One expected installment: (due date, principal, interest)."""

    due_date: date
    principal: int
    interest: int

    @property
    def amount(self) -> int:
        return self.principal + self.interest


def pay_in_4(principal: int, d: date) -> list[Line]:
    regular = principal // 4
    first = principal - 3 * regular
    return [Line(d + timedelta(days=14 * k), first if k == 0 else regular, 0) for k in range(4)]


def amortized_payment(principal: int, apr_bps: int, n: int) -> int:
    r = Fraction(apr_bps, 10_000 * 12)
    return round_half_up(principal * r / (1 - (1 + r) ** -n))


def monthly(principal: int, apr_bps: int, n: int, d: date) -> list[Line]:
    r = Fraction(apr_bps, 10_000 * 12)
    dues = [add_months(d, k) for k in range(1, n + 1)]
    if r == 0:
        regular = principal // n
        first = principal - (n - 1) * regular
        return [Line(due, first if k == 0 else regular, 0) for k, due in enumerate(dues)]
    a = amortized_payment(principal, apr_bps, n)
    lines, balance = [], principal
    for k, due in enumerate(dues, start=1):
        interest = round_half_up(balance * r)
        part = balance if k == n else a - interest
        lines.append(Line(due, part, interest))
        balance -= part
    assert balance == 0
    return lines


def after_release(
    installments: list[dict[str, Any]], amount: int
) -> tuple[list[dict[str, Any]], int, int]:
    """DOMAIN.md "Refund allocation" on a plan's installments (as the API shows them):
    unpaid principal is cut from the last installment backwards; one cut to zero is
    settled (`canceled` if nothing was paid on it) with its unpaid interest waived; the rest
    goes back to the consumer. Returns (installments, applied_to_plan, refunded_to_consumer).
    """
    result = [dict(i) for i in installments]
    left = amount
    for inst in reversed(result):
        if left == 0:
            break
        if inst["status"] not in ("scheduled", "late"):
            continue
        # Payments go to fees, then interest, then principal: what is paid of the principal.
        paid_principal = max(0, inst["amount_paid"] - inst["fees"] - inst["interest"])
        unpaid = inst["principal"] - paid_principal
        cut = min(left, unpaid)
        left -= cut
        inst["principal"] -= cut
        if inst["principal"] == paid_principal:
            inst["interest"] = min(inst["interest"], inst["amount_paid"] - paid_principal)
            inst["status"] = "canceled" if inst["amount_paid"] == 0 else "paid"
        inst["amount_due"] = inst["principal"] + inst["interest"] + inst["fees"]
    return result, amount - left, left


def expected_installments(lines: list[Line], *, first_paid: bool) -> list[dict[str, Any]]:
    return [
        {
            "seq": k,
            "due_date": line.due_date.isoformat(),
            "principal": line.principal,
            "interest": line.interest,
            "fees": 0,
            "amount_due": line.amount,
            "amount_paid": line.amount if (first_paid and k == 1) else 0,
            "status": "paid" if (first_paid and k == 1) else "scheduled",
        }
        for k, line in enumerate(lines, start=1)
    ]


def business_date(checkout: dict[str, Any]) -> date:
    """The authorization date D of an authorized checkout (UTC)."""
    return datetime.fromisoformat(checkout["authorized_at"]).date()


# --------------------------------------------------------------------------- HTTP


async def call(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    json: Any = None,
    **kwargs: Any,
) -> httpx.Response:
    """One request; a 429 (a consumer may send 20 a second) is retried after `Retry-After`."""
    for _ in range(20):
        r = await client.request(method, url, headers=headers, json=json, **kwargs)
        if r.status_code != 429:
            return r
        await asyncio.sleep(float(r.headers.get("Retry-After", "1")))
    raise AssertionError(f"still rate limited: {method} {url}")


@dataclass
class Buyer:
    handle: ConsumerHandle
    pm: str

    @property
    def id(self) -> str:
        return self.handle.id

    @property
    def headers(self) -> dict[str, str]:
        return self.handle.headers


@dataclass
class Flow:
    """The purchase flow of one test, over the public API."""

    api: Api

    @property
    def client(self) -> httpx.AsyncClient:
        return self.api.client

    async def buyer(
        self, card: str = GOOD_CARD, *, credit_limit: int | None = None, **overrides: Any
    ) -> Buyer:
        handle = await self.api.consumer(**overrides)
        pm = await self.api.add_card(handle, card)
        if credit_limit is not None:
            r = await self.client.put(
                f"/v1/consumers/{handle.id}/credit_limit",
                json={"amount": credit_limit},
                headers=self.api.operator,
            )
            assert r.status_code == 200, r.text
        return Buyer(handle, pm)

    async def create(
        self, merchant: MerchantHandle, amount: int, *, currency: str = "USD", **extra: Any
    ) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/checkouts",
            json={"amount": amount, "currency": currency, **extra},
            headers=merchant.headers,
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def confirm_response(
        self, buyer: Buyer, checkout_id: str, plan: str, pm: str | None = None
    ) -> httpx.Response:
        return await call(
            self.client,
            "POST",
            f"/v1/checkouts/{checkout_id}/confirm",
            json={"plan": plan, "payment_method_id": pm or buyer.pm},
            headers=buyer.headers,
        )

    async def confirm(self, buyer: Buyer, checkout_id: str, plan: str) -> dict[str, Any]:
        r = await self.confirm_response(buyer, checkout_id, plan)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def authorized(
        self, merchant: MerchantHandle, buyer: Buyer, amount: int, plan: str = "pay_in_4"
    ) -> dict[str, Any]:
        checkout = await self.create(merchant, amount)
        body = await self.confirm(buyer, checkout["id"], plan)
        assert body["status"] == "authorized", body
        return body

    async def captured(
        self,
        merchant: MerchantHandle,
        buyer: Buyer,
        amount: int,
        plan: str = "pay_in_4",
        capture: int | None = None,
    ) -> dict[str, Any]:
        checkout = await self.authorized(merchant, buyer, amount, plan)
        r = await self.capture(merchant, checkout["id"], capture)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def capture(
        self, merchant: MerchantHandle, checkout_id: str, amount: int | None = None
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/checkouts/{checkout_id}/capture",
            json={} if amount is None else {"amount": amount},
            headers=merchant.headers,
        )

    async def refund(
        self, merchant: MerchantHandle, checkout_id: str, amount: int
    ) -> httpx.Response:
        return await self.client.post(
            f"/v1/checkouts/{checkout_id}/refunds",
            json={"amount": amount, "reason": "returned_item"},
            headers=merchant.headers,
        )

    async def void(self, merchant: MerchantHandle, checkout_id: str) -> httpx.Response:
        return await self.client.post(f"/v1/checkouts/{checkout_id}/void", headers=merchant.headers)

    async def checkout(self, merchant: MerchantHandle, checkout_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/checkouts/{checkout_id}", headers=merchant.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def plan(self, plan_id: str) -> dict[str, Any]:
        r = await self.client.get(f"/v1/plans/{plan_id}", headers=self.api.operator)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def payments(self, buyer: Buyer, plan_id: str) -> list[dict[str, Any]]:
        r = await call(self.client, "GET", f"/v1/payments?plan_id={plan_id}", headers=buyer.headers)
        assert r.status_code == 200, r.text
        data: list[dict[str, Any]] = r.json()["data"]
        return data

    async def me(self, buyer: Buyer) -> dict[str, Any]:
        r = await call(self.client, "GET", "/v1/me", headers=buyer.headers)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def plans_of_checkout(self, checkout_id: str) -> int:
        count: int = await self.api.rt.db.fetchval(
            "SELECT count(*) FROM installments.plans WHERE checkout_id = $1", checkout_id
        )
        return count

    async def decision(self, decision_id: str) -> dict[str, Any]:
        row = await self.api.rt.db.fetchrow(
            "SELECT * FROM credit.decisions WHERE id = $1", decision_id
        )
        assert row is not None, decision_id
        return dict(row)

    async def gateway_charges(self, payment_id: str) -> list[dict[str, Any]]:
        """The gateway simulator's own rows for the card the payment `payment_id` charged."""
        rows = await self.api.rt.db.fetch(
            "SELECT c.* FROM sandbox.charges c JOIN payments.payments p "
            "ON p.gateway_token = c.token WHERE p.id = $1 ORDER BY c.created_at, c.id",
            payment_id,
        )
        return [dict(r) for r in rows]

    async def events(self, aggregate_id: str) -> list[str]:
        rows = await self.api.rt.db.fetch(
            "SELECT type FROM messaging.events WHERE aggregate_id = $1 ORDER BY id", aggregate_id
        )
        return [r["type"] for r in rows]

    async def audit_actions(self, entity_id: str) -> list[tuple[str, str]]:
        r = await self.client.get(
            f"/v1/audit?entity_id={entity_id}&limit=100", headers=self.api.operator
        )
        assert r.status_code == 200, r.text
        return [(a["actor"], a["action"]) for a in r.json()["data"]]
