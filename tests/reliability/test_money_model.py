"""The money model: hypothesis runs random sequences of checkouts, confirms, captures (whole
and partial), voids, refunds, installment payments, payoffs, card changes and clock jumps
against the platform (real HTTP, its own database and clock), and after every step compares
it with a small reference model of what every balance must be (DOMAIN.md, pay_in_4):

- each checkout's status, captured and refunded amounts;
- each plan's status, outstanding balance, and every installment's principal and amount paid;
- the money the gateway simulator's own records moved on the consumer's cards (charges less
  refunds) against what the model says the consumer paid and was paid back;
- `GET /v1/ledger/verify`.

CI runs a few short sequences (`BNPL_MODEL_EXAMPLES`, default 6, of up to
`BNPL_MODEL_STEPS`, default 20, steps); a longer run by hand:

    BNPL_MODEL_EXAMPLES=100 BNPL_MODEL_STEPS=40 \
        uv run pytest -s tests/reliability/test_money_model.py

The platform runs in a thread of its own (its own event loop), because hypothesis drives a
state machine with plain functions.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from bnpl.config import Settings
from tests.reliability.conftest import Live, live_platform
from tests.reliability.test_concurrency import card_net

EXAMPLES = int(os.environ.get("BNPL_MODEL_EXAMPLES", "6"))
STEPS = int(os.environ.get("BNPL_MODEL_STEPS", "20"))
GOOD_CARD = "4242424242424242"
T = TypeVar("T")


class Background:
    """A platform (`live_platform`) on an event loop in a thread of its own."""

    def __init__(self, postgres_server: str, settings: Settings) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._platform = live_platform(postgres_server, settings)
        self.live: Live = self.run(self._platform.__aenter__())

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=300)

    def close(self) -> None:
        try:
            self.run(self._platform.__aexit__(None, None, None))
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)


@pytest.fixture(scope="module")
def platform(postgres_server: str, settings: Settings) -> Iterator[Background]:
    background = Background(postgres_server, settings)
    try:
        yield background
    finally:
        background.close()


# --------------------------------------------------------------------------- the model


@dataclass
class Installment:
    principal: int
    paid: int
    due: date
    status: str  # scheduled | paid | canceled

    @property
    def unpaid(self) -> int:
        return self.principal - self.paid if self.status == "scheduled" else 0


@dataclass
class Plan:
    id: str
    principal: int
    installments: list[Installment]
    status: str = "active"
    released: int = 0  # refunds and partial-capture releases so far

    @property
    def outstanding(self) -> int:
        return sum(i.unpaid for i in self.installments)

    def settle_status(self, *, fully_refunded: bool = False) -> None:
        """DOMAIN.md: a plan whose checkout was refunded in full (or whose principal was
        cut to nothing) is `refunded`, also after it was paid off; one with nothing left to
        pay is `paid_off`."""
        if self.status == "paid_off" and fully_refunded:
            self.status = "refunded"
        if self.status != "active":
            return
        if fully_refunded or sum(i.principal for i in self.installments) == 0:
            self.status = "refunded"
        elif not self.outstanding:
            self.status = "paid_off"


@dataclass
class Checkout:
    id: str
    amount: int
    status: str = "open"
    plan: Plan | None = None
    captured: int | None = None
    refunded: int = 0
    expires_at: datetime | None = None


@dataclass
class Model:
    paid_in: int = 0  # what the consumer's cards paid
    paid_back: int = 0  # what was refunded to them
    checkouts: dict[str, Checkout] = field(default_factory=dict)

    def release(self, plan: Plan, amount: int, *, fully_refunded: bool = False) -> None:
        """DOMAIN.md refund allocation: unpaid principal from the last installment back,
        then the rest to the consumer's card."""
        left = amount
        for inst in reversed(plan.installments):
            if left == 0:
                break
            if inst.status != "scheduled":
                continue
            cut = min(left, inst.unpaid)
            inst.principal -= cut
            left -= cut
            if inst.principal == inst.paid:
                inst.status = "canceled" if inst.paid == 0 else "paid"
        self.paid_back += left
        plan.released += amount
        plan.settle_status(fully_refunded=fully_refunded)

    def cancel(self, plan: Plan) -> None:
        """A void or an expiry: the plan ends and all that was paid on it goes back."""
        self.paid_back += sum(i.paid for i in plan.installments)
        plan.status = "canceled"
        for inst in plan.installments:
            inst.status = "canceled"

    def pay(self, plan: Plan, inst: Installment) -> int:
        STEPS_RUN["pay"] = STEPS_RUN.get("pay", 0) + 1
        amount = inst.unpaid
        inst.paid += amount
        inst.status = "paid"
        self.paid_in += amount
        plan.settle_status()
        return amount


def pay_in_4(plan_id: str, principal: int, day: date) -> Plan:
    regular = principal // 4
    first = principal - 3 * regular
    lines = [
        Installment(first if k == 0 else regular, 0, day + timedelta(days=14 * k), "scheduled")
        for k in range(4)
    ]
    return Plan(plan_id, principal, lines)


# --------------------------------------------------------------------------- the machine


class MoneyMachine(RuleBasedStateMachine):
    bg: Background  # set by the test

    open_checkouts = Bundle("open_checkouts")

    @initialize()
    def set_up(self) -> None:
        live, api = self.bg.live, self.bg.live.api
        self.http = httpx.Client(base_url=live.url, timeout=120)
        self.model = Model()
        self.operator = api.operator
        # A merchant (KYB runs on the bus) and a verified consumer with a card.
        merchant = self.bg.run(api.active_merchant())
        self.merchant = merchant.headers
        consumer = self.bg.run(api.consumer())
        self.consumer = consumer.headers
        r = self.http.put(
            f"/v1/consumers/{consumer.id}/credit_limit",
            json={"amount": 100_000_000},
            headers=self.operator,
        )
        assert r.status_code == 200, r.text
        # Business time goes on from example to example (one platform): cards expire later.
        r = self.http.post("/v1/sandbox/clock", json={"advance": "PT0S"}, headers=self.operator)
        assert r.status_code == 200, r.text
        self.now = datetime.fromisoformat(r.json()["now"])
        self.cards = [self.add_card()]
        self.card = self.cards[0]

    def teardown(self) -> None:
        if hasattr(self, "http"):
            self.http.close()

    def add_card(self) -> str:
        r = self.http.post(
            "/v1/me/payment_methods",
            json={
                "type": "card",
                "card": {
                    "number": GOOD_CARD,
                    "exp_month": 12,
                    "exp_year": self.now.year + 3,
                    "cvc": "123",
                },
            },
            headers=self.consumer,
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])

    def settle(self) -> None:
        self.bg.run(self.bg.live.api.settle())

    def in_status(self, *statuses: str) -> list[Checkout]:
        return [c for c in self.model.checkouts.values() if c.status in statuses]

    def active_plans(self) -> list[Plan]:
        plans = [c.plan for c in self.model.checkouts.values() if c.plan is not None]
        return [p for p in plans if p.status == "active"]

    # -- merchant --------------------------------------------------------------------

    @rule(target=open_checkouts, amount=st.integers(1_000, 60_000))
    def create_checkout(self, amount: int) -> str:
        STEPS_RUN["create_checkout"] = STEPS_RUN.get("create_checkout", 0) + 1
        r = self.http.post(
            "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=self.merchant
        )
        assert r.status_code == 201, r.text
        self.model.checkouts[r.json()["id"]] = Checkout(r.json()["id"], amount)
        return str(r.json()["id"])

    @rule(checkout_id=consumes(open_checkouts))
    def confirm(self, checkout_id: str) -> None:
        STEPS_RUN["confirm"] = STEPS_RUN.get("confirm", 0) + 1
        r = self.http.post(
            f"/v1/checkouts/{checkout_id}/confirm",
            json={"plan": "pay_in_4", "payment_method_id": self.card},
            headers=self.consumer,
        )
        checkout = self.model.checkouts[checkout_id]
        if checkout.status == "expired":  # an hour passed without a confirm
            assert (r.status_code, r.json()["code"]) == (409, "checkout_not_open"), r.text
            return
        assert r.status_code == 200, r.text
        body = r.json()
        if body["status"] == "declined":
            checkout.status = "declined"
            assert body["decision"]["reasons"], body
            return
        assert body["status"] == "authorized", body
        day = datetime.fromisoformat(body["authorized_at"]).date()
        plan = pay_in_4(body["plan_id"], checkout.amount, day)
        checkout.status, checkout.plan = "authorized", plan
        checkout.expires_at = datetime.fromisoformat(body["authorization_expires_at"])
        self.model.pay(plan, plan.installments[0])  # the down payment

    @rule(amount=st.integers(1_000, 60_000), data=st.data())
    def purchase(self, amount: int, data: st.DataObject) -> None:
        """A whole purchase in one step: checkout, confirm and (most often) a capture."""
        checkout_id = str(self.create_checkout(amount))
        self.confirm(checkout_id)
        if self.model.checkouts[checkout_id].status == "authorized" and data.draw(st.booleans()):
            self.capture(data, data.draw(st.booleans()), checkout_id)

    @precondition(lambda self: self.in_status("authorized"))
    @rule(data=st.data(), whole=st.booleans())
    def capture(self, data: st.DataObject, whole: bool, checkout_id: str | None = None) -> None:
        STEPS_RUN["capture"] = STEPS_RUN.get("capture", 0) + 1
        if checkout_id is None:
            checkout = data.draw(st.sampled_from(self.in_status("authorized")))
        else:
            checkout = self.model.checkouts[checkout_id]
        amount = checkout.amount if whole else data.draw(st.integers(1, checkout.amount))
        r = self.http.post(
            f"/v1/checkouts/{checkout.id}/capture", json={"amount": amount}, headers=self.merchant
        )
        assert r.status_code == 200, r.text
        checkout.status, checkout.captured = "captured", amount
        assert checkout.plan is not None
        if amount < checkout.amount:
            self.model.release(checkout.plan, checkout.amount - amount)

    @precondition(lambda self: self.in_status("authorized"))
    @rule(data=st.data())
    def void(self, data: st.DataObject) -> None:
        STEPS_RUN["void"] = STEPS_RUN.get("void", 0) + 1
        checkout = data.draw(st.sampled_from(self.in_status("authorized")))
        r = self.http.post(f"/v1/checkouts/{checkout.id}/void", headers=self.merchant)
        assert r.status_code == 200, r.text
        checkout.status = "voided"
        assert checkout.plan is not None
        self.model.cancel(checkout.plan)

    @precondition(lambda self: self.in_status("captured", "partially_refunded"))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        STEPS_RUN["refund"] = STEPS_RUN.get("refund", 0) + 1
        checkout = data.draw(st.sampled_from(self.in_status("captured", "partially_refunded")))
        assert checkout.captured is not None and checkout.plan is not None
        amount = data.draw(st.integers(1, checkout.captured - checkout.refunded))
        r = self.http.post(
            f"/v1/checkouts/{checkout.id}/refunds", json={"amount": amount}, headers=self.merchant
        )
        assert r.status_code == 201, r.text
        checkout.refunded += amount
        full = checkout.refunded == checkout.captured
        checkout.status = "refunded" if full else "partially_refunded"
        self.model.release(checkout.plan, amount, fully_refunded=full)

    # -- consumer --------------------------------------------------------------------

    @precondition(lambda self: self.active_plans())
    @rule(data=st.data(), kind=st.sampled_from(["next_installment", "payoff"]))
    def pay(self, data: st.DataObject, kind: str) -> None:
        plan = data.draw(st.sampled_from(self.active_plans()))
        r = self.http.post(
            f"/v1/plans/{plan.id}/payments",
            json={"kind": kind, "payment_method_id": self.card},
            headers=self.consumer,
        )
        assert r.status_code == 201, r.text
        unpaid = [i for i in plan.installments if i.status == "scheduled"]
        for inst in unpaid if kind == "payoff" else unpaid[:1]:
            self.model.pay(plan, inst)

    @precondition(lambda self: self.active_plans())
    @rule(new=st.booleans(), data=st.data())
    def change_card(self, new: bool, data: st.DataObject) -> None:
        STEPS_RUN["change_card"] = STEPS_RUN.get("change_card", 0) + 1
        self.card = self.add_card() if new else data.draw(st.sampled_from(self.cards))
        if new:
            self.cards.append(self.card)
        plans = self.active_plans()
        if plans:
            plan = data.draw(st.sampled_from(plans))
            r = self.http.put(
                f"/v1/plans/{plan.id}/payment_method",
                json={"payment_method_id": self.card},
                headers=self.consumer,
            )
            assert r.status_code == 200, r.text

    # -- time ------------------------------------------------------------------------

    @precondition(lambda self: self.active_plans())
    @rule(days=st.integers(1, 20))
    def clock_jump(self, days: int) -> None:
        STEPS_RUN["clock_jump"] = STEPS_RUN.get("clock_jump", 0) + 1
        r = self.http.post(
            "/v1/sandbox/clock", json={"advance": f"P{days}D"}, headers=self.operator
        )
        assert r.status_code == 200, r.text
        now = self.now = datetime.fromisoformat(r.json()["now"])
        self.settle()
        for checkout in self.in_status("open"):  # an hour without a confirm
            checkout.status = "expired"
        for checkout in self.in_status("authorized"):
            assert checkout.expires_at is not None and checkout.plan is not None
            if checkout.expires_at <= now:  # before any installment 2 falls due (14 days)
                checkout.status = "expired"
                self.model.cancel(checkout.plan)
        for plan in self.active_plans():
            for inst in plan.installments:
                if inst.status == "scheduled" and inst.due <= now.date():
                    self.model.pay(plan, inst)  # autopay, good card

    # -- the checks ------------------------------------------------------------------

    @invariant()
    def platform_agrees_with_the_model(self) -> None:
        if not hasattr(self, "model"):
            return
        STEPS_RUN["checks"] = STEPS_RUN.get("checks", 0) + 1
        self.settle()
        for checkout in self.model.checkouts.values():
            r = self.http.get(f"/v1/checkouts/{checkout.id}", headers=self.merchant)
            body = r.json()
            seen = (body["status"], body.get("captured_amount"), body.get("refunded_amount", 0))
            assert seen == (checkout.status, checkout.captured, checkout.refunded), (
                checkout,
                body,
            )
            plan = checkout.plan
            if plan is None:
                continue
            r = self.http.get(f"/v1/plans/{plan.id}", headers=self.operator)
            got = r.json()
            assert got["status"] == plan.status, (plan, got)
            if plan.status == "canceled":
                continue
            assert got["outstanding_balance"] == plan.outstanding, (plan, got)
            lines = [(i["principal"], i["amount_paid"]) for i in got["installments"]]
            assert lines == [(i.principal, i.paid) for i in plan.installments], (plan, got)
        cards = sum(self.bg.run(card_net(self.bg.live.api, pm)) for pm in self.cards)
        assert cards == self.model.paid_in - self.model.paid_back, (
            cards,
            self.model.paid_in,
            self.model.paid_back,
        )
        r = self.http.get("/v1/ledger/verify", headers=self.operator)
        failing = [c for c in r.json()["checks"] if not c["ok"]]
        assert r.json()["ok"] is True, failing


STEPS_RUN: dict[str, int] = {}


def test_random_sequences_keep_the_books(platform: Background) -> None:
    MoneyMachine.bg = platform
    STEPS_RUN.clear()
    run_state_machine_as_test(
        MoneyMachine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            derandomize=os.environ.get("BNPL_MODEL_SEED") is None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
    print(f"\nsteps run: {sum(STEPS_RUN.values())} {dict(sorted(STEPS_RUN.items()))}")
