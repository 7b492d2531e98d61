"""Charges in flight while something else happens to the plan: the clock crosses a due date
or the end of a grace period, or the consumer changes the autopay card (issue 14).

A payment's amount and allocation belong to the moment its charge was made: whatever settles
it later (the request itself, or the collection run resuming it after a lease) applies it as
of then, and leaves the ledger balanced.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, time, timedelta

import pytest

from bnpl.installments import collections, repository
from tests.e2e.collections.helpers import (
    APR_BPS,
    GOOD_CARD,
    HARD_DECLINE_CARD,
    NO_FUNDS_CARD,
    TIMEOUT_CARD,
    add_months,
    advance,
    advance_to,
    charges,
    ledger_ok,
    monthly_schedule,
    pay,
    payments_of,
    plan,
    purchase,
    set_payment_method,
    start_day,
)
from tests.support import Api


def midnight(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


async def set_clock(api: Api, at: datetime) -> None:
    r = await api.client.post(
        "/v1/sandbox/clock", json={"to": at.isoformat()}, headers=api.operator
    )
    assert r.status_code == 200, r.text


async def charge_in_flight(api: Api, plan_id: str) -> None:
    """Wait until the plan's prepayment is on record and its charge is being sent."""
    for _ in range(200):
        if any(
            p["kind"] == "prepayment" and p["status"] == "processing"
            for p in await payments_of(api, plan_id)
        ):
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the payoff never started")


async def test_a_payoff_settled_after_a_due_date_is_still_a_payoff(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": 2999})
    bought = await purchase(api, amount=60_000, plan="monthly_6", merchant=merchant)
    plan_id, consumer = bought["plan_id"], bought["consumer"]
    first_due = add_months(d, 1)
    # A minute before installment 1 falls due, the payoff is all principal: no interest due.
    await set_clock(api, midnight(first_due) - timedelta(minutes=1))
    slow = await api.add_card(consumer, TIMEOUT_CARD)  # captured, but answered late
    paying = asyncio.create_task(pay(api, consumer, plan_id, "payoff", slow))
    await charge_in_flight(api, plan_id)
    await advance(api, "PT5M")  # past the due date (and the payment's lease) meanwhile

    r = await paying
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["amount"], r.json()["status"]) == (
        "prepayment",
        60_000,
        "succeeded",
    )
    body = await plan(api, plan_id)
    assert body["status"] == "paid_off", body
    assert body["outstanding_balance"] == 0
    # As of the charge, every installment was in the future: all interest is waived.
    assert [i["interest"] for i in body["installments"]] == [0] * 6
    assert [i["status"] for i in body["installments"]] == ["paid"] * 6
    assert [c["amount"] for c in await charges(api, slow)] == [60_000]
    assert await charges(api, bought["pm"]) == []  # autopay left the plan alone
    await ledger_ok(api)


async def test_no_late_fee_while_a_payoff_is_in_flight(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    bought = await purchase(
        api, card=NO_FUNDS_CARD, amount=60_000, plan="monthly_6", merchant=merchant
    )
    plan_id, consumer = bought["plan_id"], bought["consumer"]
    schedule = monthly_schedule(60_000, APR_BPS, 6, d)
    first_due = add_months(d, 1)
    # Declined on the due date and on each retry; late (and fined) 10 days after it.
    late_at = midnight(first_due + timedelta(days=10))
    await set_clock(api, late_at - timedelta(minutes=1))
    assert (await plan(api, plan_id))["installments"][0]["status"] == "scheduled"

    expected = 60_000 + schedule[0][2]  # unpaid principal + the due installment's interest
    slow = await api.add_card(consumer, TIMEOUT_CARD)
    paying = asyncio.create_task(pay(api, consumer, plan_id, "payoff", slow))
    await charge_in_flight(api, plan_id)
    await advance(api, "PT5M")  # the grace period ends while the charge is in flight

    r = await paying
    assert r.status_code == 201, r.text
    assert (r.json()["amount"], r.json()["status"]) == (expected, "succeeded")
    body = await plan(api, plan_id)
    assert body["status"] == "paid_off", body
    assert body["late_fees_total"] == 0
    assert [i["fees"] for i in body["installments"]] == [0] * 6
    assert [c["amount"] for c in await charges(api, slow)] == [expected]
    await ledger_ok(api)


@pytest.mark.parametrize("old_card", [NO_FUNDS_CARD, HARD_DECLINE_CARD])
async def test_a_new_card_is_attempted_at_once_even_while_a_charge_is_in_flight(
    iso_api: Api, old_card: str
) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=old_card, amount=60_000, plan="monthly_6")
    plan_id, consumer = bought["plan_id"], bought["consumer"]
    due = monthly_schedule(60_000, 0, 6, d)[0][1]
    await advance_to(api, add_months(d, 1))  # declined on the due date
    assert len(await charges(api, bought["pm"])) == 0  # declines charge nothing

    # Another attempt with the old card is claimed (recorded, its lease held): in flight.
    rt = api.rt
    async with rt.db.transaction() as conn:
        record = await repository.lock_plan(conn, plan_id)
        assert record is not None
        claim = await collections.prepare_claim(conn, rt, record, rt.clock.now())
    assert claim is not None and claim.payment.payment_method_id == bought["pm"]

    good = await api.add_card(consumer, GOOD_CARD)
    await set_payment_method(api, consumer, plan_id, good)
    assert await charges(api, good) == []  # the old card's attempt is still in flight

    # The old card's answer arrives: declined. The new card is what autopay tries next, now.
    answer = await collections.charge(rt, claim)
    assert answer is not None and not answer.succeeded
    async with rt.db.transaction() as conn:
        await collections.settle_claim(conn, rt, claim, answer, rt.clock.now())
    await advance(api, "PT1S")
    assert [c["amount"] for c in await charges(api, good)] == [due]
    body = await plan(api, plan_id)
    assert body["installments"][0]["status"] == "paid"
    assert body["payment_method_id"] == good
    await ledger_ok(api)
