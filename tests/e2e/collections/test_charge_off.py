"""Charge-off: a plan 120 days past due is `charged_off`, its receivables are written off,
its credit exposure is released, and its consumer is declined `delinquent_account`
(DOMAIN.md, "Late fees and delinquency", "Credit decision", "Ledger")."""

from __future__ import annotations

from datetime import timedelta

from tests.e2e.collections.helpers import (
    FIRST_ONLY_CARD,
    GOOD_CARD,
    advance_to,
    authorize,
    balances,
    events_of,
    ledger_ok,
    pay,
    payments_of,
    plan,
    purchase,
    start_day,
)
from tests.support import Api, ConsumerHandle, assert_problem


async def available_credit(api: Api, consumer: ConsumerHandle) -> int:
    r = await api.client.get("/v1/me", headers=consumer.headers)
    assert r.status_code == 200, r.text
    amount: int = r.json()["available_credit"]
    return amount


async def test_a_plan_120_days_past_due_is_charged_off(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=FIRST_ONLY_CARD, amount=40_000)
    plan_id, consumer = bought["plan_id"], bought["consumer"]
    assert await available_credit(api, consumer) == 100_000 - 30_000
    first_missed = d + timedelta(days=14)

    await advance_to(api, first_missed + timedelta(days=119))
    body = await plan(api, plan_id)
    assert body["status"] == "delinquent"
    assert [i["status"] for i in body["installments"]] == ["paid", "late", "late", "late"]
    assert body["late_fees_total"] == 2_100
    written_off = body["outstanding_balance"]
    assert written_off == 30_000 + 2_100
    bad_debt_before = (await balances(api)).get("bad_debt_expense", 0)

    await advance_to(api, first_missed + timedelta(days=120))
    body = await plan(api, plan_id)
    assert body["status"] == "charged_off", body
    events = await events_of(api, plan_id)
    assert [kind for kind, _ in events].count("plan.charged_off") == 1
    assert (await balances(api))["bad_debt_expense"] - bad_debt_before == written_off
    await ledger_ok(api)

    # The written-off principal no longer counts against the limit, but the consumer has a
    # charged-off plan: a new purchase is declined.
    assert await available_credit(api, consumer) == 100_000
    good = await api.add_card(consumer, GOOD_CARD)
    checkout = await authorize(
        api,
        merchant=bought["merchant"],
        consumer=consumer,
        pm=good,
        amount=10_000,
        plan="pay_in_4",
    )
    assert checkout["status"] == "declined", checkout
    assert checkout["decision"]["reasons"] == ["delinquent_account"]

    # A closed plan: nothing is due, nothing is collected any more.
    assert_problem(await pay(api, consumer, plan_id, "payoff", good), 409, "nothing_due")
    attempts = sum(len(p["attempts"]) for p in await payments_of(api, plan_id))
    await advance_to(api, first_missed + timedelta(days=200))
    assert sum(len(p["attempts"]) for p in await payments_of(api, plan_id)) == attempts
    assert (await plan(api, plan_id))["status"] == "charged_off"
    await ledger_ok(api)
