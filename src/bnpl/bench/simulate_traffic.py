"""The traffic of `bnpl simulate`: who buys, what they do afterwards, one day at a time.

The shoppers are seeded (`POST /v1/sandbox/seed`) in personas, each with its own token of
one of the gateway simulator's test cards (API.md, "Sandbox"):

- good (4242...): every charge succeeds;
- risky (4242..., the `Risky` persona, bureau score 300): the risk model declines them;
- first_only (...0341): the down payment succeeds, every later charge `insufficient_funds`:
  soft declines, retries 1, 3 and 7 days after the due date, then late fees, delinquency;
- soft (...9995): every charge `insufficient_funds` (pay-in-4 is declined at confirm);
- hard (...0002): every charge `card_declined`;
- flaky (...0119): every charge answers `processing_error` twice, then succeeds (retried
  within the attempt);
- card_lost (4242..., later ...0002): some days after a purchase the plan's card stops
  working (the sandbox cannot cancel a card, so the plan is moved to the hard-declining
  card): a hard decline, autopay blocked until the consumer gives the plan a new card.

A day is: the day's purchases (create + confirm + capture of one checkout by a merchant and a
consumer; mostly pay-in-4, some monthly plans; a few partial captures, voids and
authorizations left to expire), refunds of earlier purchases (partial and full), early
payments and payoffs, the card changes planned for the day (a lost card; a consumer fixing a
declined plan with a new card, which the platform collects at once); then
`POST /v1/sandbox/clock {"advance": "P1D"}`, which answers once the day's collections,
retries, late fees, expiries, settlements, payouts and notifications have run; then the
day's public events (`GET /v1/events`), which tell what the platform did and which plans
failed (a consumer answers a failed collection with a new card some days later, by chance).

Every random choice is drawn in order from one `random.Random(seed)` before the day's requests
are sent concurrently, so `--seed` fixes the mix whatever the order the answers come in.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from enum import StrEnum
from functools import partial
from typing import Any, Final

from bnpl.bench.http import JsonApi
from bnpl.bench.seed import GOOD_CARD, Fixtures
from bnpl.bench.seed import seed as seed_fixtures

REFRESH_AFTER_S: Final = 12 * 60  # access tokens live 15 minutes (wall-clock time)
CLOCK_TIMEOUT_S: Final = 300.0  # the platform gives a clock move up to 280 s
EVENTS_PAGE: Final = 100
EVENTS_LAG: Final = 200  # events read again each day, in case one committed late
BUSY_RETRIES: Final = 8  # 429 / 503 answers waited out before giving up
TRANSPORT_RETRIES: Final = 3

HARD_DECLINE_CARD: Final = "4000000000000002"
SOFT_DECLINE_CARD: Final = "4000000000009995"
FIRST_ONLY_CARD: Final = "4000000000000341"
FLAKY_CARD: Final = "4000000000000119"


class Persona(StrEnum):
    GOOD = "good"
    RISKY = "risky"
    FIRST_ONLY = "first_only"
    SOFT = "soft"
    HARD = "hard"
    FLAKY = "flaky"
    CARD_LOST = "card_lost"


# (persona, card seeded, share of the shoppers in per mille)
PERSONAS: Final = (
    (Persona.GOOD, GOOD_CARD, 760),
    (Persona.RISKY, GOOD_CARD, 20),
    (Persona.FIRST_ONLY, FIRST_ONLY_CARD, 80),
    (Persona.SOFT, SOFT_DECLINE_CARD, 30),
    (Persona.HARD, HARD_DECLINE_CARD, 20),
    (Persona.FLAKY, FLAKY_CARD, 30),
    (Persona.CARD_LOST, GOOD_CARD, 60),
)
# Whose seeded card keeps paying (so they may pay early, and their plans' autopay works).
PAYING: Final = frozenset({Persona.GOOD, Persona.RISKY, Persona.FLAKY, Persona.CARD_LOST})


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the day's work (not money: floats are fine here)."""

    monthly_6: float = 0.12
    monthly_12: float = 0.08  # the rest is pay_in_4
    partial_capture: float = 0.03  # captured for 80-95% of the amount
    void: float = 0.01
    uncaptured: float = 0.01  # authorized and never captured: expires after 7 days
    refund: float = 0.05  # refunds a day, per purchase of the day, of earlier purchases
    full_refund: float = 0.4  # of those refunds, the rest partial (10-50% of what is left)
    early_payment: float = 0.03  # next installment paid early, per purchase of the day
    payoff: float = 0.01  # plans paid off, per purchase of the day
    lose_card: float = 0.5  # of a card_lost shopper's captured purchases
    fix_hard: float = 0.7  # a hard-declined plan gets a new card 1-5 days later
    fix_soft: float = 0.3  # a soft-declined plan gets a new card 2-8 days later


def persona_counts(total: int) -> list[tuple[Persona, str, int]]:
    """`total` shoppers split by `PERSONAS`' shares, largest remainders first (exact sum)."""
    exact = [(p, card, total * share) for p, card, share in PERSONAS]
    counts = [count // 1000 for _, _, count in exact]
    order = sorted(range(len(exact)), key=lambda k: -(exact[k][2] % 1000))
    for k in order[: total - sum(counts)]:
        counts[k] += 1
    return [(p, card, n) for (p, card, _), n in zip(exact, counts, strict=True)]


# ------------------------------------------------------------------------------ state


@dataclass(slots=True)
class Shopper:
    index: int
    id: str
    email: str
    persona: Persona
    authorization: str
    refresh_token: str
    issued_at: float
    seeded_method: str
    good_method: str | None  # a card that pays: the seeded one, or one added to fix a plan
    lost_method: str | None = None  # the hard-declining card a card_lost plan moves to
    purchases: list[str] = field(default_factory=list)  # checkout ids


@dataclass(slots=True)
class Purchase:
    number: int  # the run's purchases in the order they were drawn
    checkout_id: str
    shopper: int
    merchant: int
    kind: str
    amount: int
    day: int
    status: str = "open"  # authorized, captured, declined, voided, failed
    plan_id: str | None = None
    captured: int = 0
    refunded: int = 0  # refunds by the merchant
    applied_to_plan: int = 0  # refunds and the partial capture's release, on the plan
    plan_closed: bool = False  # paid off, refunded, canceled or charged off (events)
    autopay_pays: bool = True  # the plan's card pays
    failed_once: bool = False  # a collection of this plan failed (events)


@dataclass(slots=True)
class DayFigures:
    """One day's work; the totals are the same fields summed."""

    day: int = 0
    date: str = ""
    purchases: int = 0  # captured
    purchase_amount: int = 0
    declined: int = 0
    voided: int = 0
    uncaptured: int = 0
    expired: int = 0
    collected: int = 0  # collections that succeeded (autopay, retries, a new card's attempt)
    collected_amount: int = 0
    installments_paid: int = 0  # installment.paid: collections, down payments, early payments
    failed: int = 0  # collection attempts declined (payment.failed, installment)
    failed_soft: int = 0
    failed_hard: int = 0
    retries: int = 0  # collection attempts of a payment that had failed before
    recovered: int = 0  # installments collected on plans whose collection had failed
    late_fees: int = 0
    late_fee_amount: int = 0
    delinquent: int = 0
    reactivated: int = 0
    paid_off: int = 0
    charged_off: int = 0
    refunds: int = 0
    refund_amount: int = 0
    refunded_to_consumers: int = 0  # payments of kind refund that succeeded
    early_payments: int = 0
    payoffs: int = 0
    card_changes: int = 0
    settlements: int = 0  # created
    settlements_paid: int = 0
    settlement_paid_amount: int = 0
    wall_s: float = 0.0
    traffic_s: float = 0.0
    clock_s: float = 0.0

    def add(self, other: DayFigures) -> None:
        for f in fields(self):
            if f.name not in ("day", "date"):
                setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    def as_json(self) -> dict[str, Any]:
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("wall_s", "traffic_s", "clock_s"):
            out[name] = round(out[name], 3)
        return out


# ------------------------------------------------------------------------------ the traffic


@dataclass(frozen=True, slots=True)
class PurchaseDraw:
    """Everything random about one purchase, drawn before it is sent."""

    number: int
    shopper: int
    merchant: int
    kind: str
    amount: int
    capture: str  # full, partial, void, none
    captured: int
    lose_card_after: int  # days, 0: keeps it


Job = Callable[[DayFigures], Awaitable[None]]


class Simulator:
    """The run's shoppers, merchants and purchases, and the day loop's steps."""

    def __init__(
        self,
        api: JsonApi,
        *,
        seed_value: int,
        mix: Mix,
        purchases_per_day: int,
        concurrency: int,
    ) -> None:
        self.api = api
        self.mix = mix
        self.purchases_per_day = purchases_per_day
        self.seed_value = seed_value
        self.rng = random.Random(seed_value)
        self.gate = asyncio.Semaphore(concurrency)
        self.merchant_ids: list[str] = []
        self.merchant_keys: list[str] = []
        self.merchant_config: dict[str, dict[str, Any]] = {}
        self.shoppers: list[Shopper] = []
        self.purchases: dict[str, Purchase] = {}  # by checkout id, in creation order
        self.by_plan: dict[str, Purchase] = {}
        self.agenda: dict[int, list[tuple[str, str]]] = {}  # day -> (action, checkout id)
        self.adding_card: dict[int, asyncio.Future[str | None]] = {}
        self.refreshing: dict[int, asyncio.Future[None]] = {}
        self.refund_problems: list[str] = []
        self.failed_payments: set[str] = set()
        self.consumer_payments: set[str] = set()  # early payments and payoffs (not autopay)
        self.seen_events: set[str] = set()
        self.event_ids: list[str] = []
        self.first_cursor: str | None = None
        self.events_read = 0
        self.event_counts: Counter[str] = Counter()
        self.drawn = 0
        self.today: date | None = None

    # -- set-up ---------------------------------------------------------------------------

    async def seed_world(self, merchants: int, consumers: int) -> float:
        """Seed the merchants and the shoppers, persona by persona; seconds it took."""
        started = time.perf_counter()
        http, token = self.api.http, self.api.operator.removeprefix("Bearer ")
        quiet: Callable[[str], None] = lambda _: None  # noqa: E731
        first = True
        for persona, card, count in persona_counts(consumers):
            if count == 0 and not first:
                continue
            risky = 1.0 if persona is Persona.RISKY else 0.0
            fixtures: Fixtures = await seed_fixtures(
                http, token, merchants if first else 0, count, risky, quiet, card=card
            )
            if first:
                self.merchant_ids = fixtures.merchant_ids
                self.merchant_keys = fixtures.merchant_authorization
                first = False
            c = fixtures.consumers
            for k in range(len(c)):
                self.shoppers.append(
                    Shopper(
                        index=len(self.shoppers),
                        id=c.ids[k],
                        email=c.emails[k],
                        persona=persona,
                        authorization=c.authorization[k],
                        refresh_token=c.refresh_tokens[k],
                        issued_at=c.issued_at[k],
                        seeded_method=c.payment_methods[k],
                        good_method=c.payment_methods[k] if persona in PAYING else None,
                    )
                )
        for merchant_id in self.merchant_ids:
            answer = await self.api.call(
                "GET", f"/v1/merchants/{merchant_id}", self.api.operator, route="GET /v1/merchants"
            )
            if answer.status == 200:
                self.merchant_config[merchant_id] = answer.body["config"]
        return time.perf_counter() - started

    async def clock(self, advance: str) -> datetime | None:
        answer = await self.api.call(
            "POST",
            "/v1/sandbox/clock",
            self.api.operator,
            {"advance": advance},
            route="POST /v1/sandbox/clock",
            timeout_s=CLOCK_TIMEOUT_S,
        )
        if answer.status != 200:
            return None
        now = datetime.fromisoformat(answer.body["now"])
        self.today = now.date()
        return now

    # -- consumers' tokens and cards ----------------------------------------------------------

    async def auth(self, s: Shopper) -> str:
        """The shopper's bearer token, rotated once it is old (one rotation at a time)."""
        if time.monotonic() - s.issued_at < REFRESH_AFTER_S:
            return s.authorization
        waiting = self.refreshing.get(s.index)
        if waiting is None:
            waiting = asyncio.get_running_loop().create_future()
            self.refreshing[s.index] = waiting
            try:
                answer = await self.api.call(
                    "POST",
                    "/v1/auth/refresh",
                    None,
                    {"refresh_token": s.refresh_token},
                    route="POST /v1/auth/refresh",
                )
                if answer.status == 200:
                    s.authorization = f"Bearer {answer.body['access_token']}"
                    s.refresh_token = answer.body["refresh_token"]
                    s.issued_at = time.monotonic()
            finally:
                waiting.set_result(None)
                del self.refreshing[s.index]
        else:
            await waiting
        return s.authorization

    async def add_card(self, s: Shopper, number: str) -> str | None:
        """A new card of the shopper's (`POST /v1/me/payment_methods`); its id."""
        body = {
            "type": "card",
            "card": {"number": number, "exp_month": 12, "exp_year": 2040, "cvc": "123"},
        }
        answer = await self.api.call(
            "POST",
            "/v1/me/payment_methods",
            await self.auth(s),
            body,
            route="POST /v1/me/payment_methods",
            expect=(201,),
        )
        return str(answer.body["id"]) if answer.status == 201 else None

    async def good_card(self, s: Shopper) -> str | None:
        """The shopper's paying card, added once however many plans wait for it."""
        if s.good_method is not None:
            return s.good_method
        waiting = self.adding_card.get(s.index)
        if waiting is not None:
            return await waiting
        waiting = asyncio.get_running_loop().create_future()
        self.adding_card[s.index] = waiting
        try:
            s.good_method = await self.add_card(s, GOOD_CARD)
        finally:
            waiting.set_result(s.good_method)
        return s.good_method

    # -- one day --------------------------------------------------------------------------

    def _draw_purchase(self) -> PurchaseDraw:
        rng, mix = self.rng, self.mix
        self.drawn += 1
        shopper = rng.randrange(len(self.shoppers))
        merchant = rng.randrange(len(self.merchant_ids))
        kind_draw = rng.random()
        if kind_draw < mix.monthly_6:
            kind, amount = "monthly_6", rng.randrange(10_000, 60_001)
        elif kind_draw < mix.monthly_6 + mix.monthly_12:
            kind, amount = "monthly_12", rng.randrange(10_000, 60_001)
        else:
            kind, amount = "pay_in_4", rng.randrange(2_000, 40_001)
        capture_draw = rng.random()
        capture, captured = "full", amount
        if capture_draw < mix.void:
            capture, captured = "void", 0
        elif capture_draw < mix.void + mix.uncaptured:
            capture, captured = "none", 0
        elif capture_draw < mix.void + mix.uncaptured + mix.partial_capture:
            capture, captured = "partial", amount * rng.randrange(80, 96) // 100
        lose = 0
        if rng.random() < mix.lose_card:
            lose = rng.randrange(2, 11)
        return PurchaseDraw(self.drawn, shopper, merchant, kind, amount, capture, captured, lose)

    def _count(self, share: float) -> int:
        """How many of something a day brings: each of the day's purchases brings one with
        probability `share` (binomial: the count varies from day to day)."""
        return sum(self.rng.random() < share for _ in range(self.purchases_per_day))

    def plan_day(self, day: int) -> list[Job]:
        """The day's work, every random choice drawn now, in a fixed order."""
        work: list[Job] = []
        for _ in range(self.purchases_per_day):
            work.append(partial(self.purchase, draw=self._draw_purchase(), day=day))
        touched: set[str] = set()
        for action, checkout_id in sorted(self.agenda.pop(day, [])):
            touched.add(checkout_id)
            act = self.lose_card if action == "lose_card" else self.fix_card
            work.append(partial(act, checkout_id=checkout_id))
        # In the order they were drawn, whatever order the platform answered them in.
        ordered = sorted(self.purchases.values(), key=lambda p: p.number)
        captured = [p for p in ordered if p.status == "captured"]
        refundable = [
            p for p in captured if p.refunded < p.captured and p.checkout_id not in touched
        ]
        for p in self.rng.sample(refundable, min(len(refundable), self._count(self.mix.refund))):
            touched.add(p.checkout_id)
            left = p.captured - p.refunded
            amount = left
            if self.rng.random() >= self.mix.full_refund:
                amount = max(1, left * self.rng.randrange(10, 51) // 100)
            work.append(partial(self.refund, p=p, amount=amount))
        payable = [
            p
            for p in captured
            if not p.plan_closed
            and p.autopay_pays
            and self.shoppers[p.shopper].good_method is not None
            and p.checkout_id not in touched
        ]
        early = self._count(self.mix.early_payment)
        payoffs = self._count(self.mix.payoff)
        chosen = self.rng.sample(payable, min(len(payable), early + payoffs))
        for n, p in enumerate(chosen):
            kind = "payoff" if n < payoffs else "next_installment"
            work.append(partial(self.pay_early, p=p, kind=kind))
        return work

    async def run_day(self, day: int, figures: DayFigures) -> None:
        """Send the day's work, `concurrency` requests' worth at a time."""
        work = self.plan_day(day)

        async def one(job: Job) -> None:
            async with self.gate:
                await job(figures)

        if day == 1 and work:
            # The run's first purchase alone: its first event marks where the run's events
            # begin in the platform's feed (a platform in use has others before it).
            await one(work[0])
            await self._mark_first_event()
            work = work[1:]
        await asyncio.gather(*(one(job) for job in work))

    async def _mark_first_event(self) -> None:
        for authorization in self.merchant_keys:
            answer = await self.api.call(
                "GET", "/v1/events?limit=1", authorization, route="GET /v1/events"
            )
            if answer.status == 200 and answer.body["data"]:
                # The events after it are read (the marker itself, checkout.created, is
                # not counted).
                self.first_cursor = answer.body["data"][0]["id"]
                return

    # -- the actions ----------------------------------------------------------------------

    async def purchase(self, f: DayFigures, *, draw: PurchaseDraw, day: int) -> None:
        s = self.shoppers[draw.shopper]
        merchant = self.merchant_keys[draw.merchant]
        created = await self.api.call(
            "POST",
            "/v1/checkouts",
            merchant,
            {
                "amount": draw.amount,
                "currency": "USD",
                "merchant_reference": f"sim-{self.api.run_id}-{len(self.purchases)}",
                "consumer_email": s.email,
            },
            route="POST /v1/checkouts",
            expect=(201,),
        )
        if created.status != 201:
            return
        checkout_id = created.body["id"]
        p = Purchase(draw.number, checkout_id, s.index, draw.merchant, draw.kind, draw.amount, day)
        self.purchases[checkout_id] = p
        s.purchases.append(checkout_id)
        method = s.good_method or s.seeded_method
        path = f"/v1/checkouts/{checkout_id}"
        confirmed = await self.api.call(
            "POST",
            path + "/confirm",
            await self.auth(s),
            {"plan": draw.kind, "payment_method_id": method},
            route="POST /v1/checkouts/{id}/confirm",
        )
        if confirmed.status != 200:
            p.status = "failed"
            return
        if confirmed.body["status"] != "authorized":
            p.status = "declined"
            f.declined += 1
            return
        p.status, p.plan_id = "authorized", confirmed.body["plan_id"]
        self.by_plan[confirmed.body["plan_id"]] = p
        p.autopay_pays = s.persona in PAYING or method == s.good_method
        if draw.capture == "void":
            voided = await self.api.call(
                "POST", path + "/void", merchant, route="POST /v1/checkouts/{id}/void"
            )
            if voided.status == 200:
                p.status = "voided"
                f.voided += 1
            return
        if draw.capture == "none":
            f.uncaptured += 1
            return
        body = {"amount": draw.captured} if draw.capture == "partial" else None
        captured = await self.api.call(
            "POST", path + "/capture", merchant, body, route="POST /v1/checkouts/{id}/capture"
        )
        if captured.status != 200:
            return
        p.status, p.captured = "captured", captured.body["captured_amount"]
        if p.captured < p.amount:
            # The released part is applied like a refund: to the unpaid principal first
            # (pay-in-4's first quarter is already paid by the down payment).
            unpaid = 3 * (p.amount // 4) if p.kind == "pay_in_4" else p.amount
            p.applied_to_plan += min(p.amount - p.captured, unpaid)
        f.purchases += 1
        f.purchase_amount += p.captured
        if s.persona is Persona.CARD_LOST and draw.lose_card_after:
            self.agenda.setdefault(day + draw.lose_card_after, []).append(
                ("lose_card", checkout_id)
            )

    async def refund(self, f: DayFigures, *, p: Purchase, amount: int) -> None:
        answer = await self.api.call(
            "POST",
            f"/v1/checkouts/{p.checkout_id}/refunds",
            self.merchant_keys[p.merchant],
            {"amount": amount, "reason": "returned_item"},
            route="POST /v1/checkouts/{id}/refunds",
            expect=(201,),
        )
        if answer.status != 201:
            return
        body = answer.body
        if body["applied_to_plan"] + body["refunded_to_consumer"] != amount:
            self.refund_problems.append(
                f"{body['id']}: {body['applied_to_plan']} applied + "
                f"{body['refunded_to_consumer']} to the consumer != {amount}"
            )
        p.refunded += amount
        p.applied_to_plan += body["applied_to_plan"]
        f.refunds += 1
        f.refund_amount += amount

    async def pay_early(self, f: DayFigures, *, p: Purchase, kind: str) -> None:
        s = self.shoppers[p.shopper]
        method = await self.good_card(s)
        if method is None:
            return
        answer = await self.api.call(
            "POST",
            f"/v1/plans/{p.plan_id}/payments",
            await self.auth(s),
            {"kind": kind, "payment_method_id": method},
            route="POST /v1/plans/{id}/payments",
            expect=(201,),
            benign=("nothing_due",),  # closed meanwhile (a refund, the last collection)
        )
        if answer.status == 201:
            self.consumer_payments.add(answer.body["id"])
        if answer.status == 201 and answer.body["status"] == "succeeded":
            if kind == "payoff":
                f.payoffs += 1
            else:
                f.early_payments += 1

    async def _set_card(self, f: DayFigures, p: Purchase, method: str) -> bool:
        s = self.shoppers[p.shopper]
        answer = await self.api.call(
            "PUT",
            f"/v1/plans/{p.plan_id}/payment_method",
            await self.auth(s),
            {"payment_method_id": method},
            route="PUT /v1/plans/{id}/payment_method",
        )
        if answer.status == 200:
            f.card_changes += 1
            if answer.body["status"] not in ("active", "delinquent"):
                p.plan_closed = True
        return answer.status == 200

    async def lose_card(self, f: DayFigures, *, checkout_id: str) -> None:
        """The plan's card stops working (played by the hard-declining test card)."""
        p = self.purchases[checkout_id]
        if p.plan_closed:
            return
        s = self.shoppers[p.shopper]
        if s.lost_method is None:
            s.lost_method = await self.add_card(s, HARD_DECLINE_CARD)
        if s.lost_method is not None and await self._set_card(f, p, s.lost_method):
            p.autopay_pays = False

    async def fix_card(self, f: DayFigures, *, checkout_id: str) -> None:
        """The consumer gives a declined plan a card that pays; the platform collects what
        is overdue at once."""
        p = self.purchases[checkout_id]
        if p.plan_closed:
            return
        method = await self.good_card(self.shoppers[p.shopper])
        if method is not None and await self._set_card(f, p, method):
            p.autopay_pays = True

    # -- what the platform did: the day's events ------------------------------------------

    async def read_events(self, f: DayFigures, day: int) -> None:
        """The public events since the last read (and the last `EVENTS_LAG` again, in case
        one committed after a later one was read), the run's own counted once each."""
        if len(self.event_ids) > EVENTS_LAG:
            cursor: str | None = self.event_ids[-EVENTS_LAG]
        else:
            cursor = self.first_cursor
        while True:
            url = f"/v1/events?limit={EVENTS_PAGE}" + (
                f"&starting_after={cursor}" if cursor else ""
            )
            answer = await self.api.call("GET", url, self.api.operator, route="GET /v1/events")
            if answer.status != 200:
                return
            for event in answer.body["data"]:
                if event["id"] not in self.seen_events:
                    self.seen_events.add(event["id"])
                    self.event_ids.append(event["id"])
                    self.events_read += 1
                    self._count_event(f, event, day)
            if not answer.body["has_more"] or not answer.body["data"]:
                return
            cursor = answer.body["data"][-1]["id"]

    def _count_event(self, f: DayFigures, event: dict[str, Any], day: int) -> None:
        kind, data = event["type"], event["data"]
        if kind.startswith("settlement."):
            if data.get("merchant_id") not in self.merchant_config:
                return
            if kind == "settlement.created":
                f.settlements += 1
            else:
                f.settlements_paid += 1
                f.settlement_paid_amount += data["net"]
            self.event_counts[kind] += 1
            return
        if kind.startswith("checkout."):
            if data.get("id") not in self.purchases:
                return
            self.event_counts[kind] += 1
            if kind == "checkout.expired":
                f.expired += 1
            return
        plan_id = data.get("plan_id") if not kind.startswith("plan.") else data.get("id")
        p = self.by_plan.get(plan_id or "")
        if p is None:
            return
        self.event_counts[kind] += 1
        if kind in ("payment.succeeded", "payment.failed"):
            self._count_payment(f, p, kind == "payment.succeeded", data, day)
        elif kind == "installment.paid":
            f.installments_paid += 1
        elif kind == "installment.late":
            f.late_fees += 1
            f.late_fee_amount += data["late_fee"]
        elif kind in ("plan.paid_off", "plan.refunded", "plan.canceled", "plan.charged_off"):
            p.plan_closed = True
            f.paid_off += kind == "plan.paid_off"
            f.charged_off += kind == "plan.charged_off"
        elif kind == "plan.delinquent":
            f.delinquent += 1
        elif kind == "plan.reactivated":
            f.reactivated += 1

    def _count_payment(
        self, f: DayFigures, p: Purchase, succeeded: bool, data: dict[str, Any], day: int
    ) -> None:
        payment_id, kind = data["payment_id"], data["kind"]
        if kind == "refund":
            if succeeded:
                f.refunded_to_consumers += data["amount"]
            return
        if kind != "installment" or payment_id in self.consumer_payments:
            return  # down payments are purchases; early payments the consumer's own
        retry = payment_id in self.failed_payments
        f.retries += retry
        if succeeded:
            f.collected += 1
            f.collected_amount += data["amount"]
            f.recovered += p.failed_once
            return
        self.failed_payments.add(payment_id)
        f.failed += 1
        hard = data.get("decline") == "hard"
        f.failed_hard += hard
        f.failed_soft += not hard
        if p.failed_once:
            return
        # The plan's first failure: will the consumer fix it with a new card? Drawn from the
        # plan's own generator, so the order events come in changes nothing.
        p.failed_once = True
        share, low, high = (self.mix.fix_hard, 1, 5) if hard else (self.mix.fix_soft, 2, 8)
        rng = random.Random(f"{self.seed_value}/fix/{p.number}")
        if rng.random() < share:
            self.agenda.setdefault(day + rng.randrange(low, high + 1), []).append(
                ("fix_card", p.checkout_id)
            )


def eligible_consumers(sim: Simulator) -> Iterable[Shopper]:
    """Shoppers who financed something in the run."""
    return (s for s in sim.shoppers if any(sim.purchases[c].plan_id for c in s.purchases))
