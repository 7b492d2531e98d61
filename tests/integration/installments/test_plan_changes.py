"""Payments, refunds and cancellations applied through the facade and persisted."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bnpl import installments
from bnpl.installments import (
    PaymentApplication,
    PaymentKind,
    Plan,
    PlanClosed,
    PlanKind,
    PlanNotFound,
    PlanStatus,
    RefundApplication,
    RefundExceedsPlan,
)
from bnpl.kit.ids import new_id
from bnpl.runtime import Runtime
from tests.integration.installments.helpers import (
    AT,
    Parties,
    events_of,
    new_plan,
    stored_installments,
    stored_plan,
)
from tests.support import Api


async def pay(
    rt: Runtime,
    plan_id: str,
    amount: int,
    kind: PaymentKind = "installment",
    at: datetime = AT,
) -> PaymentApplication:
    async with rt.db.transaction() as conn:
        return await installments.apply_payment(conn, plan_id, amount, at=at, kind=kind)


async def refund(rt: Runtime, plan_id: str, amount: int) -> RefundApplication:
    async with rt.db.transaction() as conn:
        return await installments.apply_refund(conn, plan_id, amount, at=AT)


async def read(rt: Runtime, plan_id: str) -> Plan:
    async with rt.db.connection() as conn:
        plan = await installments.get_plan(conn, plan_id)
    assert plan is not None
    return plan


def statuses(plan: Plan) -> list[str]:
    return [i.status.value for i in plan.installments]


def principals(plan: Plan) -> list[int]:
    return [i.principal for i in plan.installments]


async def event_types(rt: Runtime, plan_id: str) -> list[str]:
    return [e["type"] for e in await events_of(rt, plan_id)]


async def _monthly_6(rt: Runtime, parties: Parties) -> Plan:
    # Installments (principal, interest): (7993, 833), (8126, 700), (8262, 564),
    # (8399, 427), (8539, 287), (8682, 145); due on the last day of Feb..Jul 2026.
    return await new_plan(
        rt,
        parties,
        kind=PlanKind.MONTHLY_6,
        principal=50_001,
        apr_bps=1999,
        authorization_date=date(2026, 1, 31),
    )


# --------------------------------------------------------------------------- payments


async def test_down_payment_settles_the_first_installment(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    plan = await new_plan(rt, parties, principal=40_001)
    applied = await pay(rt, plan.id, 10_001, "down_payment")

    assert (applied.principal, applied.interest, applied.fees, applied.unapplied) == (
        10_001,
        0,
        0,
        0,
    )
    assert applied.paid_installments == (1,)
    assert applied.plan.outstanding_balance == 30_000
    assert applied.plan.status is PlanStatus.ACTIVE

    r = await api.client.get(f"/v1/plans/{plan.id}", headers=parties.consumer.headers)
    body = r.json()
    assert body["outstanding_balance"] == 30_000
    assert body["installments"][0] == {
        "seq": 1,
        "due_date": "2026-11-25",
        "principal": 10_001,
        "interest": 0,
        "fees": 0,
        "amount_due": 10_001,
        "amount_paid": 10_001,
        "status": "paid",
    }
    assert [i["status"] for i in body["installments"]] == ["paid", *["scheduled"] * 3]

    rows = await stored_installments(rt, plan.id)
    assert rows[0]["paid_at"] == AT and rows[0]["principal_paid"] == 10_001
    assert all(r["paid_at"] is None for r in rows[1:])
    assert (await stored_plan(rt, plan.id))["version"] == 2

    created, paid = await events_of(rt, plan.id)
    assert created["type"] == "plan.created"
    assert paid["type"] == "installment.paid"
    assert paid["merchant_id"] == parties.merchant.id
    assert paid["consumer_id"] == parties.consumer.id
    assert paid["data"] == {
        "plan_id": plan.id,
        "seq": 1,
        "due_date": "2026-11-25",
        "amount_due": 10_001,
        "amount_paid": 10_001,
        "currency": "USD",
        "paid_at": "2026-11-25T15:30:00Z",
    }


async def test_a_plan_without_down_payment_refuses_one(rt: Runtime, parties: Parties) -> None:
    plan = await _monthly_6(rt, parties)
    with pytest.raises(ValueError, match="no down payment"):
        await pay(rt, plan.id, 1_000, "down_payment")
    with pytest.raises(ValueError):
        await pay(rt, plan.id, 0)
    with pytest.raises(PlanNotFound):
        await pay(rt, new_id("pln"), 1_000)


async def test_payments_go_to_interest_then_principal_and_payoff_waives_future_interest(
    rt: Runtime, parties: Parties
) -> None:
    plan = await _monthly_6(rt, parties)

    first = await pay(rt, plan.id, 1_000)
    assert (first.interest, first.principal, first.paid_installments) == (833, 167, ())

    second = await pay(rt, plan.id, 8_000)  # the rest of #1 (7,826), then #2's interest
    assert [(p.seq, p.interest, p.principal) for p in second.parts] == [(1, 0, 7_826), (2, 174, 0)]
    assert second.paid_installments == (1,)

    today = date(2026, 3, 15)  # #1 is due and paid; #2 falls due on March 31
    async with rt.db.connection() as conn:
        quote = await installments.payoff_quote(conn, plan.id, today)
    assert quote is not None
    assert (quote.amount, quote.waived_interest) == (50_001 - 7_993, 526 + 564 + 427 + 287 + 145)

    payoff = await pay(
        rt, plan.id, quote.amount + 50, "prepayment", datetime(2026, 3, 15, 12, tzinfo=UTC)
    )
    assert (payoff.principal, payoff.interest, payoff.unapplied) == (42_008, 0, 50)
    assert payoff.waived_interest == quote.waived_interest
    assert payoff.paid_installments == (2, 3, 4, 5, 6)
    assert payoff.plan.status is PlanStatus.PAID_OFF
    assert payoff.plan.outstanding_balance == 0

    stored = await read(rt, plan.id)
    assert stored == payoff.plan
    assert stored.installments[1].interest == 174  # the unpaid 526 was waived
    assert stored.principal == 50_001  # payments never change the principal
    assert (await stored_plan(rt, plan.id))["status"] == "paid_off"
    assert await event_types(rt, plan.id) == [
        "plan.created",
        "installment.paid",
        *["installment.paid"] * 5,
        "plan.paid_off",
    ]

    # A paid-off plan owes nothing: a late payment is handed back, not applied.
    extra = await pay(rt, plan.id, 500)
    assert (extra.unapplied, extra.principal, extra.parts) == (500, 0, ())
    assert (await read(rt, plan.id)).status is PlanStatus.PAID_OFF


async def test_a_payoff_applied_after_a_due_date_is_allocated_as_of_its_quote(
    rt: Runtime, parties: Parties
) -> None:
    plan = await _monthly_6(rt, parties)
    quoted = date(2026, 2, 27)  # the day before #1 falls due: every installment is future
    async with rt.db.connection() as conn:
        quote = await installments.payoff_quote(conn, plan.id, quoted)
    assert quote is not None and quote.amount == 50_001

    # Settled on March 2: as of then the payoff would owe #1's interest too, but the charge
    # was made (and its amount fixed) on the day of the quote.
    late = datetime(2026, 3, 2, 0, 5, tzinfo=UTC)
    async with rt.db.transaction() as conn:
        payoff = await installments.apply_payment(
            conn, plan.id, quote.amount, at=late, kind="prepayment", as_of=quoted
        )
    assert (payoff.principal, payoff.interest, payoff.unapplied) == (50_001, 0, 0)
    assert payoff.waived_interest == 833 + 700 + 564 + 427 + 287 + 145
    assert payoff.plan.status is PlanStatus.PAID_OFF
    assert [i.interest for i in payoff.plan.installments] == [0] * 6


# --------------------------------------------------------------------------- refunds


async def test_partial_refund_cuts_unpaid_principal_from_the_last_installment(
    rt: Runtime, api: Api, parties: Parties
) -> None:
    plan = await new_plan(rt, parties)
    await pay(rt, plan.id, 10_000, "down_payment")

    applied = await refund(rt, plan.id, 15_000)
    assert (applied.applied_to_plan, applied.refunded_to_consumer) == (15_000, 0)
    assert applied.canceled_installments == (4,)

    r = await api.client.get(f"/v1/plans/{plan.id}", headers=parties.merchant.headers)
    body = r.json()
    assert body["status"] == "active"
    assert body["principal"] == 25_000
    assert body["original_principal"] == 40_000
    assert body["outstanding_balance"] == 15_000
    assert [(i["principal"], i["amount_due"], i["status"]) for i in body["installments"]] == [
        (10_000, 10_000, "paid"),
        (10_000, 10_000, "scheduled"),
        (5_000, 5_000, "scheduled"),
        (0, 0, "canceled"),
    ]
    assert (await stored_plan(rt, plan.id))["refunded_amount"] == 15_000
    assert (await stored_plan(rt, plan.id))["principal"] == 25_000

    event = (await events_of(rt, plan.id))[-1]
    assert event["type"] == "plan.refund_applied"
    assert event["merchant_id"] == parties.merchant.id
    data: dict[str, Any] = event["data"]
    assert data["amount"] == 15_000 and data["applied_to_plan"] == 15_000
    assert data["canceled_installments"] == [4]
    assert data["plan"] == body


async def test_refund_of_the_whole_unpaid_plan_cancels_every_installment(
    rt: Runtime, parties: Parties
) -> None:
    plan = await _monthly_6(rt, parties)
    applied = await refund(rt, plan.id, 50_001)
    assert (applied.applied_to_plan, applied.refunded_to_consumer) == (50_001, 0)
    assert applied.canceled_installments == (1, 2, 3, 4, 5, 6)
    assert applied.waived_interest == 833 + 700 + 564 + 427 + 287 + 145

    stored = await read(rt, plan.id)
    assert stored.status is PlanStatus.REFUNDED
    assert (stored.principal, stored.outstanding_balance) == (0, 0)
    assert statuses(stored) == ["canceled"] * 6
    assert all(i.amount_due == 0 for i in stored.installments)
    assert await event_types(rt, plan.id) == [
        "plan.created",
        "plan.refund_applied",
        "plan.refunded",
    ]


async def test_refund_beyond_the_unpaid_principal_goes_back_to_the_consumer(
    rt: Runtime, parties: Parties
) -> None:
    plan = await new_plan(rt, parties)
    await pay(rt, plan.id, 10_000, "down_payment")

    applied = await refund(rt, plan.id, 40_000)
    assert (applied.applied_to_plan, applied.refunded_to_consumer) == (30_000, 10_000)
    assert applied.canceled_installments == (2, 3, 4)
    stored = await read(rt, plan.id)
    assert stored.status is PlanStatus.REFUNDED
    assert statuses(stored) == ["paid", "canceled", "canceled", "canceled"]
    # The principal keeps what the consumer had paid (and now gets back).
    assert (stored.principal, stored.outstanding_balance) == (10_000, 0)
    assert (await stored_plan(rt, plan.id))["refunded_amount"] == 40_000

    with pytest.raises(RefundExceedsPlan):
        await refund(rt, plan.id, 1)


async def test_partial_refund_leaving_only_paid_installments_pays_the_plan_off(
    rt: Runtime, parties: Parties
) -> None:
    plan = await new_plan(rt, parties)
    await pay(rt, plan.id, 10_000, "down_payment")
    await pay(rt, plan.id, 4_000)  # part of #2

    applied = await refund(rt, plan.id, 26_000)
    assert (applied.applied_to_plan, applied.refunded_to_consumer) == (26_000, 0)
    assert applied.canceled_installments == (3, 4)
    stored = await read(rt, plan.id)
    assert stored.status is PlanStatus.PAID_OFF
    # #2 shrinks to what was paid on it and is settled.
    assert principals(stored) == [10_000, 4_000, 0, 0]
    assert statuses(stored) == ["paid", "paid", "canceled", "canceled"]
    assert stored.outstanding_balance == 0

    # Refunding the rest of the purchase later turns the paid-off plan into a refunded one.
    rest = await refund(rt, plan.id, 14_000)
    assert (rest.applied_to_plan, rest.refunded_to_consumer) == (0, 14_000)
    assert (await read(rt, plan.id)).status is PlanStatus.REFUNDED
    assert await event_types(rt, plan.id) == [
        "plan.created",
        "installment.paid",
        "plan.refund_applied",
        "plan.paid_off",
        "plan.refund_applied",
        "plan.refunded",
    ]


async def test_refund_is_refused_beyond_the_plan_and_on_canceled_plans(
    rt: Runtime, parties: Parties
) -> None:
    plan = await new_plan(rt, parties, principal=10_000)
    with pytest.raises(RefundExceedsPlan) as exceeded:
        await refund(rt, plan.id, 10_001)
    assert exceeded.value.refundable == 10_000
    with pytest.raises(ValueError):
        await refund(rt, plan.id, -5)
    with pytest.raises(PlanNotFound):
        await refund(rt, "pln_nope", 5)
    async with rt.db.transaction() as conn:
        await installments.cancel_plan(conn, plan.id, at=AT)
    with pytest.raises(PlanClosed):
        await refund(rt, plan.id, 5)


# --------------------------------------------------------------------------- cancellation


async def test_cancel_returns_what_the_consumer_paid_and_releases_the_rest(
    rt: Runtime, parties: Parties
) -> None:
    plan = await new_plan(rt, parties)
    await pay(rt, plan.id, 10_000, "down_payment")

    async with rt.db.transaction() as conn:
        canceled = await installments.cancel_plan(conn, plan.id, at=AT)
    assert (canceled.paid_by_consumer, canceled.unpaid_principal_released) == (10_000, 30_000)
    assert canceled.canceled_installments == (2, 3, 4)

    stored = await read(rt, plan.id)
    assert stored.status is PlanStatus.CANCELED
    assert statuses(stored) == ["paid", "canceled", "canceled", "canceled"]
    assert stored.outstanding_balance == 0
    event = (await events_of(rt, plan.id))[-1]
    assert event["type"] == "plan.canceled"
    assert event["data"]["paid_by_consumer"] == 10_000
    assert event["data"]["status"] == "canceled"

    with pytest.raises(PlanClosed):
        async with rt.db.transaction() as conn:
            await installments.cancel_plan(conn, plan.id, at=AT)
    late = await pay(rt, plan.id, 10_000)
    assert late.unapplied == 10_000


async def test_a_prepaid_plan_can_still_be_canceled(rt: Runtime, parties: Parties) -> None:
    plan = await new_plan(rt, parties, principal=10_000)
    paid = await pay(rt, plan.id, 10_000, "prepayment")
    assert paid.plan.status is PlanStatus.PAID_OFF
    async with rt.db.transaction() as conn:
        canceled = await installments.cancel_plan(conn, plan.id, at=AT)
    assert (canceled.paid_by_consumer, canceled.unpaid_principal_released) == (10_000, 0)
    assert (await read(rt, plan.id)).status is PlanStatus.CANCELED


# --------------------------------------------------------------------------- concurrency


async def _racing_refunds(rt: Runtime, plan_id: str, amounts: list[int]) -> list[object]:
    start = asyncio.Event()

    async def one(amount: int) -> RefundApplication:
        await start.wait()
        async with rt.db.transaction() as conn:
            applied = await installments.apply_refund(conn, plan_id, amount, at=AT)
            await asyncio.sleep(0.02)  # hold the lock while the others queue up
            return applied

    tasks = [asyncio.create_task(one(a)) for a in amounts]
    await asyncio.sleep(0)
    start.set()
    return list(await asyncio.gather(*tasks, return_exceptions=True))


async def test_concurrent_refunds_of_one_plan_serialize(rt: Runtime, parties: Parties) -> None:
    plan = await new_plan(rt, parties, principal=10_000)
    results = await _racing_refunds(rt, plan.id, [6_000, 6_000])
    assert sorted(type(r).__name__ for r in results) == ["RefundApplication", "RefundExceedsPlan"]

    plan = await new_plan(rt, parties, principal=10_000)
    await pay(rt, plan.id, 2_500, "down_payment")
    results = await _racing_refunds(rt, plan.id, [1_500] * 8)
    done = [r for r in results if isinstance(r, RefundApplication)]
    refused = [r for r in results if isinstance(r, RefundExceedsPlan)]
    assert (len(done), len(refused)) == (6, 2)
    assert sum(r.applied_to_plan + r.refunded_to_consumer for r in done) == 9_000
    assert sum(r.applied_to_plan for r in done) == 7_500
    assert sum(r.refunded_to_consumer for r in done) == 1_500

    row = await stored_plan(rt, plan.id)
    assert (row["refunded_amount"], row["principal"], row["status"]) == (9_000, 2_500, "paid_off")
    rows = await stored_installments(rt, plan.id)
    assert sum(r["principal"] for r in rows) == row["principal"]


# --------------------------------------------------------------------------- queries


async def test_delinquency_and_unpaid_principal_queries(rt: Runtime, parties: Parties) -> None:
    consumer_id = new_id("cus")
    async with rt.db.connection() as conn:
        assert not await installments.has_delinquent_plan(conn, consumer_id)
        before = await installments.unpaid_principal_total(conn, "CAD")

    async def total() -> int:
        async with rt.db.connection() as conn:
            return await installments.unpaid_principal_total(conn, "CAD") - before

    plan = await new_plan(rt, parties, consumer_id=consumer_id, currency="CAD")
    assert await total() == 40_000
    await pay(rt, plan.id, 10_000, "down_payment")
    assert await total() == 30_000
    await refund(rt, plan.id, 5_000)
    assert await total() == 25_000
    other = await new_plan(
        rt,
        parties,
        consumer_id=consumer_id,
        currency="CAD",
        kind=PlanKind.MONTHLY_6,
        principal=50_001,
        apr_bps=1999,
    )
    assert await total() == 75_001

    async with rt.db.connection() as conn:
        assert not await installments.has_delinquent_plan(conn, consumer_id)
    for status, delinquent in (("delinquent", True), ("charged_off", True), ("active", False)):
        await rt.db.execute(
            "UPDATE installments.plans SET status = $2 WHERE id = $1", other.id, status
        )
        async with rt.db.connection() as conn:
            assert await installments.has_delinquent_plan(conn, consumer_id) is delinquent

    async with rt.db.transaction() as conn:
        await installments.cancel_plan(conn, plan.id, at=AT)
        await installments.cancel_plan(conn, other.id, at=AT)
    assert await total() == 0
