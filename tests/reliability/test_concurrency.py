"""Races that must not move money twice, over real HTTP against the platform on a real port.

Each race sends its requests at once from one client (`race`): the platform handles them
concurrently on its event loop, each on its own connection of the database pool, exactly as
in production. That they overlapped is asserted (every request had started before the first
one was answered), so a test cannot pass by running them one after the other.

After each race: `GET /v1/ledger/verify` holds, and the money the gateway simulator's own
records moved on the card (charges less refunds) is exactly what the platform's payments say
(succeeded payments less refunds paid back): nothing was charged or refunded twice.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from bnpl import identity
from bnpl.config import Settings
from tests.e2e.checkout.helpers import Buyer, Flow
from tests.reliability.conftest import Live, live_platform
from tests.support import Api, MerchantHandle

ROUNDS = 4  # races of each kind per test
PAYOFF_PLANS = 8


@pytest.fixture(scope="module")
async def http(live: Live) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=live.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
async def shop(live: Live) -> MerchantHandle:
    return await live.api.active_merchant()


async def race(
    *calls: Callable[[], Awaitable[httpx.Response]],
) -> list[httpx.Response]:
    """Start every call at once; assert they overlapped (none was answered before the last
    one had been sent)."""
    spans: list[tuple[float, float]] = []

    async def timed(call: Callable[[], Awaitable[httpx.Response]]) -> httpx.Response:
        started = time.monotonic()
        r = await call()
        spans.append((started, time.monotonic()))
        return r

    answers = await asyncio.gather(*(timed(c) for c in calls))
    last_start = max(s for s, _ in spans)
    first_end = min(e for _, e in spans)
    assert last_start < first_end, "the requests did not overlap: not a race"
    return list(answers)


def post(
    http: httpx.AsyncClient, url: str, body: Any, headers: dict[str, str]
) -> Callable[[], Awaitable[httpx.Response]]:
    return lambda: http.post(url, json=body, headers=headers)


async def verify_ledger(api: Api) -> None:
    await api.settle()
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    failing = [c for c in r.json()["checks"] if not c["ok"]]
    assert r.json()["ok"] is True, failing


async def card_net(api: Api, pm: str) -> int:
    """What the gateway simulator's own records moved on the card: charges less refunds."""
    async with api.rt.db.connection() as conn:
        token = await identity.payment_method_token(conn, None, pm, include_deleted=True)
        net = await conn.fetchval(
            "SELECT coalesce(sum(amount - refunded_amount), 0) FROM sandbox.charges "
            "WHERE token = $1 AND status IN ('captured', 'refunded')",
            token,
        )
    return int(net)


async def paid_net(api: Api, buyer: Buyer) -> int:
    """What the platform says the consumer paid, less what it paid back."""
    r = await api.client.get("/v1/me/plans?limit=100", headers=buyer.headers)
    total = 0
    for plan in r.json()["data"]:
        p = await api.client.get(
            f"/v1/payments?plan_id={plan['id']}&limit=100", headers=api.operator
        )
        for payment in p.json()["data"]:
            if payment["status"] == "succeeded":
                sign = -1 if payment["kind"] == "refund" else 1
                total += sign * payment["amount"]
    return total


async def assert_money_moved_once(api: Api, buyer: Buyer) -> int:
    await verify_ledger(api)
    net = await card_net(api, buyer.pm)
    assert net == await paid_net(api, buyer), "the card and the platform disagree"
    return net


async def test_the_same_idempotency_key_sent_at_once_has_one_effect(
    live: Live, http: httpx.AsyncClient, shop: MerchantHandle
) -> None:
    api, flow = live.api, Flow(live.api)
    for round_ in range(ROUNDS):
        buyer = await flow.buyer()
        checkout = await flow.create(shop, 40_000)
        key = {"Idempotency-Key": f"confirm-{checkout['id']}"}
        body = {"plan": "pay_in_4", "payment_method_id": buyer.pm}
        url = f"/v1/checkouts/{checkout['id']}/confirm"
        headers = {**buyer.headers, **key}
        confirms = await race(*[post(http, url, body, headers)] * 6)
        statuses = sorted(r.status_code for r in confirms)
        assert set(statuses) <= {200, 409}, [r.text for r in confirms]
        done = [r for r in confirms if r.status_code == 200]
        assert done and len({r.json()["plan_id"] for r in done}) == 1, round_
        for r in confirms:
            if r.status_code == 409:
                assert r.json()["code"] == "idempotency_request_in_progress", r.text
        assert await flow.plans_of_checkout(checkout["id"]) == 1
        assert await card_net(api, buyer.pm) == 10_000  # one down payment

        captured = await flow.capture(shop, checkout["id"])
        assert captured.status_code == 200, captured.text
        key = {"Idempotency-Key": f"refund-{checkout['id']}"}
        url = f"/v1/checkouts/{checkout['id']}/refunds"
        refunds = await race(*[post(http, url, {"amount": 5_000}, {**shop.headers, **key})] * 6)
        assert {r.status_code for r in refunds} <= {201, 409}, [r.text for r in refunds]
        listed = await api.client.get(url, headers=shop.headers)
        assert len(listed.json()["data"]) == 1, listed.text
        await assert_money_moved_once(api, buyer)


async def test_concurrent_confirms_never_pass_the_credit_limit(
    live: Live, http: httpx.AsyncClient, shop: MerchantHandle
) -> None:
    api, flow = live.api, Flow(live.api)
    # A monthly plan has no down payment: each approval holds its whole amount.
    limit, amount = 20_000, 8_000  # room for two, not three
    for _ in range(ROUNDS):
        buyer = await flow.buyer(credit_limit=limit)
        checkouts = [await flow.create(shop, amount) for _ in range(6)]
        body = {"plan": "monthly_6", "payment_method_id": buyer.pm}
        urls = [f"/v1/checkouts/{c['id']}/confirm" for c in checkouts]
        answers = await race(*[post(http, url, body, buyer.headers) for url in urls])
        assert {r.status_code for r in answers} == {200}, [r.text for r in answers]
        outcomes = [r.json()["status"] for r in answers]
        approved = outcomes.count("authorized")
        assert approved >= 1 and approved * amount <= limit, outcomes
        for r in answers:
            if r.json()["status"] == "declined":
                assert r.json()["decision"]["reasons"] == ["insufficient_credit_limit"], r.text
        me = await flow.me(buyer)
        assert me["available_credit"] == limit - approved * amount, me
        assert await assert_money_moved_once(api, buyer) == 0


async def test_concurrent_refunds_never_pass_the_refundable_amount(
    live: Live, http: httpx.AsyncClient, shop: MerchantHandle
) -> None:
    api, flow = live.api, Flow(live.api)
    for _ in range(ROUNDS):
        buyer = await flow.buyer()
        checkout = await flow.captured(shop, buyer, 40_000)
        url = f"/v1/checkouts/{checkout['id']}/refunds"
        answers = await race(*[post(http, url, {"amount": 7_000}, shop.headers)] * 8)
        made = [r for r in answers if r.status_code == 201]
        for r in answers:
            if r.status_code != 201:
                assert r.json()["code"] == "amount_exceeds_refundable", r.text
        assert len(made) == 40_000 // 7_000, [r.text for r in answers]  # 5 fit, 3 refused
        state = await flow.checkout(shop, checkout["id"])
        assert state["refunded_amount"] == sum(r.json()["amount"] for r in made)
        # 35,000 refunded: 30,000 cut from the plan, 5,000 of the 10,000 paid back.
        assert await assert_money_moved_once(api, buyer) == 5_000


async def test_a_void_racing_a_capture_has_one_winner(
    live: Live, http: httpx.AsyncClient, shop: MerchantHandle
) -> None:
    api, flow = live.api, Flow(live.api)
    winners: list[str] = []
    for _ in range(ROUNDS * 2):
        buyer = await flow.buyer()
        checkout = await flow.authorized(shop, buyer, 40_000)
        base = f"/v1/checkouts/{checkout['id']}"
        capture, void = await race(
            post(http, f"{base}/capture", {}, shop.headers),
            post(http, f"{base}/void", None, shop.headers),
        )
        answers = {capture.status_code, void.status_code}
        assert answers == {200, 409}, (capture.text, void.text)
        state = await flow.checkout(shop, checkout["id"])
        plan = await flow.plan(checkout["plan_id"])
        if capture.status_code == 200:
            winners.append("capture")
            assert (state["status"], plan["status"]) == ("captured", "active")
            assert await assert_money_moved_once(api, buyer) == 10_000
        else:
            winners.append("void")
            assert (state["status"], plan["status"]) == ("voided", "canceled")
            assert await assert_money_moved_once(api, buyer) == 0  # paid back once
    print(f"\nvoid vs capture winners: {winners}")


@pytest.fixture
async def own_clock(postgres_server: str, settings: Settings) -> AsyncIterator[Live]:
    """A platform of its own: the race moves its clock two weeks."""
    # The gateway simulator answers in 200 ms: a collection's charge stays in flight long
    # enough for payoffs to land during it.
    async with live_platform(postgres_server, settings, sandbox_latency_ms=200) as platform:
        yield platform


async def collections_in_flight(api: Api, plan_ids: list[str]) -> int:
    """How many of the plans have an autopay collection (an installment payment) yet."""
    count: int = await api.rt.db.fetchval(
        "SELECT count(*) FROM payments.payments WHERE kind = 'installment' AND plan_id = ANY($1)",
        plan_ids,
    )
    return count


async def test_a_payoff_racing_an_autopay_collection_charges_once(own_clock: Live) -> None:
    """Installment 2 falls due; the moment its autopay collections are under way (their
    payments recorded, their charges in flight at the gateway for 200 ms), every consumer
    pays the plan off. Each card is charged the plan's principal exactly once in all."""
    api, flow = own_clock.api, Flow(own_clock.api)
    shop = await api.active_merchant()
    pairs = []
    for _ in range(PAYOFF_PLANS):
        buyer = await flow.buyer()
        checkout = await flow.captured(shop, buyer, 40_000)
        pairs.append((buyer, checkout["plan_id"]))
    plan_ids = [p for _, p in pairs]
    # Up to the day before installment 2 falls due; the race moves the last day.
    r = await api.client.post("/v1/sandbox/clock", json={"advance": "P13D"}, headers=api.operator)
    assert r.status_code == 200, r.text
    await api.settle()
    async with httpx.AsyncClient(base_url=own_clock.url, timeout=120) as http:
        clock = asyncio.create_task(
            http.post("/v1/sandbox/clock", json={"advance": "P1D"}, headers=api.operator)
        )
        while await collections_in_flight(api, plan_ids) == 0:
            assert not clock.done(), clock.result().text
            await asyncio.sleep(0.005)
        in_flight = await collections_in_flight(api, plan_ids)
        payoffs = [
            http.post(
                f"/v1/plans/{plan_id}/payments",
                json={"kind": "payoff", "payment_method_id": buyer.pm},
                headers=buyer.headers,
            )
            for buyer, plan_id in pairs
        ]
        assert not clock.done(), "the collections ended before the payoffs were sent"
        answers = await asyncio.gather(*payoffs)
        moved = await clock
    assert moved.status_code == 200, moved.text
    for r in answers:
        assert r.status_code in (201, 409), r.text
    await api.settle()
    seen = []
    for buyer, plan_id in pairs:
        plan = await flow.plan(plan_id)
        kinds = await api.client.get(f"/v1/payments?plan_id={plan_id}", headers=api.operator)
        seen.append(sorted(f"{p['kind']}:{p['status']}" for p in kinds.json()["data"]))
        net = await assert_money_moved_once(api, buyer)
        # Never more than the principal (no interest, no fee on pay_in_4 in time).
        assert net <= 40_000, (net, plan)
        if plan["status"] == "paid_off":
            assert net == 40_000, plan
        assert plan["outstanding_balance"] == 40_000 - net, plan
    print(
        f"\n{in_flight} collections under way when {len(pairs)} payoffs were sent; "
        f"answers {[(r.status_code, r.json().get('code')) for r in answers]}; payments {seen}"
    )
