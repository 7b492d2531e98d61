"""Autopay over the sandbox clock: every installment charged once, on its due date, through
to `paid_off`; transient gateway failures and timeouts never charge twice; a canceled plan is
never collected (DOMAIN.md, "Collections"; API.md, "Payments", "Sandbox")."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from tests.e2e.collections.helpers import (
    APR_BPS,
    FLAKY_CARD,
    GOOD_CARD,
    NO_FUNDS_CARD,
    TIMEOUT_CARD,
    advance_to,
    attempt_dates,
    authorize,
    charges,
    credited,
    entries_for,
    events_of,
    ledger_ok,
    monthly_schedule,
    pay_in_4_schedule,
    payments_of,
    plan,
    purchase,
    start_day,
)
from tests.support import Api


async def follow_autopay(
    api: Api, bought: dict[str, Any], schedule: list[tuple[date, int, int]], first_autopaid: int
) -> None:
    """Walk the clock to each due date from installment `first_autopaid` (1-based) on: nothing
    is charged the day before, exactly that installment is charged on the day."""
    for seq in range(first_autopaid, len(schedule) + 1):
        due, principal, interest = schedule[seq - 1]
        await advance_to(api, due - timedelta(days=1), hour=23)
        assert len(await charges(api, bought["pm"])) == seq - 1, f"installment {seq} charged early"
        await advance_to(api, due, hour=1)
        found = await charges(api, bought["pm"])
        assert [c["amount"] for c in found][seq - 1 :] == [principal + interest], (seq, found)
        assert all(c["status"] == "captured" for c in found)


async def assert_paid_off_by_autopay(
    api: Api, bought: dict[str, Any], schedule: list[tuple[date, int, int]], down_payment: bool
) -> None:
    plan_id = bought["plan_id"]
    body = await plan(api, plan_id)
    assert body["status"] == "paid_off", body
    assert body["outstanding_balance"] == 0
    assert [
        (i["due_date"], i["principal"], i["interest"], i["fees"], i["amount_paid"], i["status"])
        for i in body["installments"]
    ] == [(d.isoformat(), p, r, 0, p + r, "paid") for d, p, r in schedule]

    # Each installment: one payment, one attempt, on its due date; the gateway charged it once.
    payments = await payments_of(api, plan_id)
    autopaid = schedule[1:] if down_payment else schedule
    kinds = (["down_payment"] if down_payment else []) + ["installment"] * len(autopaid)
    assert [p["kind"] for p in payments] == kinds
    assert all(p["status"] == "succeeded" and p["failure_code"] is None for p in payments)
    collected = [p for p in payments if p["kind"] == "installment"]
    for payment, (due, principal, interest) in zip(collected, autopaid, strict=True):
        assert payment["amount"] == principal + interest
        assert attempt_dates(payment) == [due], payment
        assert [(a["outcome"], a["code"]) for a in payment["attempts"]] == [("succeeded", None)]
        assert payment["next_attempt_at"] is None
    gateway = await charges(api, bought["pm"])
    assert [c["amount"] for c in gateway] == [p + r for _, p, r in schedule]
    assert {c["status"] for c in gateway} == {"captured"}

    events = await events_of(api, plan_id)
    paid = [data["seq"] for kind, data in events if kind == "installment.paid"]
    assert paid == list(range(1, len(schedule) + 1))
    assert [kind for kind, _ in events].count("plan.paid_off") == 1
    assert events[-1][0] == "plan.paid_off"
    await ledger_ok(api)


async def test_pay_in_4_is_collected_on_each_due_date_to_paid_off(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, amount=40_003)
    schedule = pay_in_4_schedule(40_003, d)
    await follow_autopay(api, bought, schedule, first_autopaid=2)
    await assert_paid_off_by_autopay(api, bought, schedule, down_payment=True)

    # Nothing more is ever charged on a paid-off plan.
    await advance_to(api, d + timedelta(days=80))
    assert len(await charges(api, bought["pm"])) == 4


async def test_monthly_6_with_interest_is_collected_to_paid_off(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    bought = await purchase(api, amount=60_000, plan="monthly_6", merchant=merchant)
    schedule = monthly_schedule(60_000, APR_BPS, 6, d)
    body = await plan(api, bought["plan_id"])
    assert body["apr_bps"] == APR_BPS
    assert [(i["principal"], i["interest"]) for i in body["installments"]] == [
        (p, r) for _, p, r in schedule
    ]
    await follow_autopay(api, bought, schedule, first_autopaid=1)
    await assert_paid_off_by_autopay(api, bought, schedule, down_payment=False)

    # Each collection pays its installment's interest, then its principal.
    for payment, (_, principal, interest) in zip(
        await payments_of(api, bought["plan_id"]), schedule, strict=True
    ):
        [entry] = [
            e for e in await entries_for(api, payment["id"]) if e["kind"] == "payment.received"
        ]
        assert credited(entry, "interest_receivable") == interest
        assert credited(entry, "consumer_receivable") == principal


async def test_interest_is_booked_once_when_it_falls_due_whatever_the_card_answers(
    iso_api: Api,
) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    paid = await purchase(api, amount=60_000, plan="monthly_6", merchant=merchant)
    declined = await purchase(
        api, card=NO_FUNDS_CARD, amount=60_000, plan="monthly_6", merchant=merchant
    )
    [(due, _, interest), *_] = monthly_schedule(60_000, APR_BPS, 6, d)

    async def interest_booked(plan_id: str) -> list[int]:
        return [
            credited(e, "interest_revenue")
            for e in await entries_for(api, plan_id)
            if e["kind"] == "plan.interest_due"
        ]

    await advance_to(api, due - timedelta(days=1), hour=23)
    assert await interest_booked(paid["plan_id"]) == []
    assert await interest_booked(declined["plan_id"]) == []

    # On the due date: one collection succeeds, the other is soft-declined; both book the
    # installment's interest, once.
    await advance_to(api, due)
    assert (await payments_of(api, paid["plan_id"]))[0]["status"] == "succeeded"
    assert (await payments_of(api, declined["plan_id"]))[0]["status"] == "retry_scheduled"
    assert await interest_booked(paid["plan_id"]) == [interest]
    assert await interest_booked(declined["plan_id"]) == [interest]
    await ledger_ok(api)

    # Three more declined attempts book nothing more.
    await advance_to(api, due + timedelta(days=8))
    [payment] = await payments_of(api, declined["plan_id"])
    assert len(payment["attempts"]) == 4
    assert await interest_booked(declined["plan_id"]) == [interest]
    await ledger_ok(api)


async def test_transient_failures_and_timeouts_never_charge_twice(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant()
    terms: dict[str, Any] = {"amount": 60_000, "plan": "monthly_6", "merchant": merchant}
    flaky = await purchase(api, card=FLAKY_CARD, **terms)
    slow = await purchase(api, card=TIMEOUT_CARD, **terms)
    schedule = monthly_schedule(60_000, 0, 6, d)

    await advance_to(api, schedule[-1][0] + timedelta(days=1))
    for bought, attempts in (
        (flaky, [("transient", "processing_error")] * 2 + [("succeeded", None)]),
        (slow, [("transient", "timeout"), ("succeeded", None)]),
    ):
        assert (await plan(api, bought["plan_id"]))["status"] == "paid_off"
        # The simulator's own record: exactly one captured charge per installment.
        gateway = await charges(api, bought["pm"])
        assert [(c["amount"], c["status"]) for c in gateway] == [
            (p, "captured") for _, p, _ in schedule
        ]
        payments = await payments_of(api, bought["plan_id"])
        assert len(payments) == 6
        for payment, (due, _, _) in zip(payments, schedule, strict=True):
            assert payment["status"] == "succeeded", payment
            assert [(a["outcome"], a["code"]) for a in payment["attempts"]] == attempts
            assert set(attempt_dates(payment)) == {due}
            # Every retry reused the one idempotency key: one gateway charge id throughout.
            refs = {a["gateway_reference"] for a in payment["attempts"]} - {None}
            assert len(refs) == 1
        assert len({c["id"] for c in gateway}) == 6
    await ledger_ok(api)


async def test_a_canceled_plan_is_never_collected(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant()
    consumer = await api.consumer()
    pm = await api.add_card(consumer, GOOD_CARD)
    # Authorized, never captured: the authorization expires after 7 days.
    expiring = await authorize(
        api, merchant=merchant, consumer=consumer, pm=pm, amount=20_000, plan="pay_in_4"
    )
    expiring_monthly = await authorize(
        api, merchant=merchant, consumer=consumer, pm=pm, amount=30_000, plan="monthly_6"
    )
    # Voided by the merchant the next day.
    voided = await authorize(
        api, merchant=merchant, consumer=consumer, pm=pm, amount=12_000, plan="pay_in_4"
    )
    for checkout in (expiring, expiring_monthly, voided):
        assert checkout["status"] == "authorized", checkout
    await advance_to(api, d + timedelta(days=1))
    r = await api.client.post(f"/v1/checkouts/{voided['id']}/void", headers=merchant.headers)
    assert r.status_code == 200, r.text

    await advance_to(api, d + timedelta(days=8))
    for checkout in (expiring, expiring_monthly):
        r = await api.client.get(f"/v1/checkouts/{checkout['id']}", headers=merchant.headers)
        assert r.json()["status"] == "expired", r.text

    # Past every due date of all three plans.
    await advance_to(api, d + timedelta(days=200))
    for checkout in (expiring, expiring_monthly, voided):
        body = await plan(api, checkout["plan_id"])
        assert body["status"] == "canceled", body
        assert {i["status"] for i in body["installments"][1:]} == {"canceled"}
        kinds = [p["kind"] for p in await payments_of(api, checkout["plan_id"])]
        assert "installment" not in kinds, kinds
    # The card saw the two down payments only, both paid back.
    gateway = await charges(api, pm)
    assert sorted((c["amount"], c["status"]) for c in gateway) == [
        (3_000, "refunded"),
        (5_000, "refunded"),
    ]
    await ledger_ok(api)
