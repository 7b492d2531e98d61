"""Soft and hard declines over the sandbox clock: retries 1, 3 and 7 days after the due date,
late fees after 10 days of grace (capped at 25% of the principal), delinquency, and recovery
by a new payment method (DOMAIN.md, "Collections", "Late fees and delinquency")."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tests.e2e.collections.helpers import (
    FIRST_ONLY_CARD,
    GOOD_CARD,
    HARD_DECLINE_CARD,
    add_months,
    advance_to,
    attempt_dates,
    charges,
    credited,
    entries_for,
    events_of,
    ledger_ok,
    payments_of,
    plan,
    purchase,
    set_payment_method,
    start_day,
)
from tests.support import Api


def midnight(day: date) -> str:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat().replace("+00:00", "Z")


def installments_of(payments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [p for p in payments if p["kind"] == "installment"]


def as_utc(value: str | None) -> str | None:
    if value is None:
        return None
    return datetime.fromisoformat(value).astimezone(UTC).isoformat().replace("+00:00", "Z")


async def test_soft_decline_retries_late_fee_and_recovery_by_new_card(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=FIRST_ONLY_CARD, amount=40_000)
    plan_id, consumer = bought["plan_id"], bought["consumer"]
    assert [c["amount"] for c in await charges(api, bought["pm"])] == [10_000]  # down payment
    due = d + timedelta(days=14)

    # Attempted on the due date, then 1, 3 and 7 days after it; retry_scheduled in between.
    for day, attempts, retry in (
        (due, 1, due + timedelta(days=1)),
        (due + timedelta(days=1), 2, due + timedelta(days=3)),
        (due + timedelta(days=3), 3, due + timedelta(days=7)),
    ):
        await advance_to(api, day)
        [payment] = installments_of(await payments_of(api, plan_id))
        assert payment["amount"] == 10_000
        assert payment["status"] == "retry_scheduled", payment
        assert payment["failure_code"] == "insufficient_funds"
        assert as_utc(payment["next_attempt_at"]) == midnight(retry), payment
        assert len(payment["attempts"]) == attempts
        # Nothing more happens before the retry's day.
        await advance_to(api, retry - timedelta(days=1), hour=23)
        [same] = installments_of(await payments_of(api, plan_id))
        assert len(same["attempts"]) == attempts

    await advance_to(api, due + timedelta(days=7))
    [payment] = installments_of(await payments_of(api, plan_id))
    assert payment["status"] == "failed", payment
    assert payment["next_attempt_at"] is None
    assert attempt_dates(payment) == [due + timedelta(days=k) for k in (0, 1, 3, 7)]
    assert [(a["outcome"], a["code"]) for a in payment["attempts"]] == [
        ("declined", "insufficient_funds")
    ] * 4

    # Inside the grace period the installment is not late yet.
    await advance_to(api, due + timedelta(days=9), hour=23)
    body = await plan(api, plan_id)
    assert body["status"] == "active"
    assert body["installments"][1]["status"] == "scheduled"

    # 10 days after the due date: late, one fee of 700, plan delinquent.
    await advance_to(api, due + timedelta(days=10))
    body = await plan(api, plan_id)
    assert body["status"] == "delinquent", body
    assert body["late_fees_total"] == 700
    second = body["installments"][1]
    assert (second["status"], second["fees"], second["amount_due"], second["amount_paid"]) == (
        "late",
        700,
        10_700,
        0,
    )
    assert body["outstanding_balance"] == 30_700
    events = await events_of(api, plan_id)
    late = [data for kind, data in events if kind == "installment.late"]
    assert [(e["seq"], e["late_fee"]) for e in late] == [(2, 700)]
    assert [k for k, _ in events].count("plan.delinquent") == 1
    await ledger_ok(api)

    # A new card: everything overdue (installment + fee) is charged at once.
    good = await api.add_card(consumer, GOOD_CARD)
    body = await set_payment_method(api, consumer, plan_id, good)
    assert body["status"] == "active", body
    assert body["payment_method_id"] == good
    second = body["installments"][1]
    assert (second["status"], second["fees"], second["amount_due"], second["amount_paid"]) == (
        "paid",
        700,
        10_700,
        10_700,
    )
    assert [i["status"] for i in body["installments"]] == ["paid", "paid", "scheduled", "scheduled"]
    assert body["late_fees_total"] == 700
    assert body["outstanding_balance"] == 20_000
    assert [c["amount"] for c in await charges(api, good)] == [10_700]
    recovery = installments_of(await payments_of(api, plan_id))[-1]
    assert (recovery["amount"], recovery["status"]) == (10_700, "succeeded")
    # Allocation within the installment: the fee first, then principal.
    [entry] = [e for e in await entries_for(api, recovery["id"]) if e["kind"] == "payment.received"]
    assert credited(entry, "fees_receivable") == 700
    assert credited(entry, "consumer_receivable") == 10_000
    assert "plan.reactivated" in [k for k, _ in await events_of(api, plan_id)]
    await ledger_ok(api)

    # Autopay goes on with the new card.
    await advance_to(api, d + timedelta(days=42))
    body = await plan(api, plan_id)
    assert body["status"] == "paid_off", body
    assert [c["amount"] for c in await charges(api, good)] == [10_700, 10_000, 10_000]
    assert [c["amount"] for c in await charges(api, bought["pm"])] == [10_000]
    await ledger_ok(api)


async def test_late_fees_are_capped_at_a_quarter_of_the_principal(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=FIRST_ONLY_CARD, amount=4_000)  # cap: 1,000
    plan_id, consumer = bought["plan_id"], bought["consumer"]

    await advance_to(api, d + timedelta(days=14 + 40))  # every installment is late
    body = await plan(api, plan_id)
    assert body["status"] == "delinquent"
    assert [i["status"] for i in body["installments"]] == ["paid", "late", "late", "late"]
    assert [i["fees"] for i in body["installments"]] == [0, 700, 300, 0]
    assert body["late_fees_total"] == 1_000
    assert body["outstanding_balance"] == 3_000 + 1_000
    late = [data for kind, data in await events_of(api, plan_id) if kind == "installment.late"]
    assert [(e["seq"], e["late_fee"]) for e in late] == [(2, 700), (3, 300), (4, 0)]

    # Each due date starts one collection of everything overdue: four attempts on the
    # schedule (due, +1, +3, +7), never more.
    collections = installments_of(await payments_of(api, plan_id))
    assert [(p["amount"], p["status"]) for p in collections] == [
        (1_000, "failed"),
        (1_000 + 700 + 1_000, "failed"),
        (1_000 + 700 + 1_000 + 300 + 1_000, "failed"),
    ], collections
    for payment, k in zip(collections, (1, 2, 3), strict=True):
        due = d + timedelta(days=14 * k)
        assert attempt_dates(payment) == [due + timedelta(days=n) for n in (0, 1, 3, 7)]
    await ledger_ok(api)

    # A new card pays it all in one charge, applied oldest installment first.
    good = await api.add_card(consumer, GOOD_CARD)
    body = await set_payment_method(api, consumer, plan_id, good)
    assert body["status"] == "paid_off", body
    assert [i["amount_paid"] for i in body["installments"]] == [1_000, 1_700, 1_300, 1_000]
    assert [c["amount"] for c in await charges(api, good)] == [4_000]
    recovery = installments_of(await payments_of(api, plan_id))[-1]
    [entry] = [e for e in await entries_for(api, recovery["id"]) if e["kind"] == "payment.received"]
    assert credited(entry, "fees_receivable") == 1_000
    assert credited(entry, "consumer_receivable") == 3_000
    await ledger_ok(api)


async def test_hard_decline_is_attempted_once_until_a_new_card(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=HARD_DECLINE_CARD, amount=60_000, plan="monthly_6")
    plan_id, consumer = bought["plan_id"], bought["consumer"]
    first_due, second_due = add_months(d, 1), add_months(d, 2)

    await advance_to(api, first_due)
    [payment] = installments_of(await payments_of(api, plan_id))
    assert (payment["status"], payment["failure_code"], payment["next_attempt_at"]) == (
        "failed",
        "card_declined",
        None,
    )
    assert attempt_dates(payment) == [first_due]

    # Never retried automatically: not on the soft-decline days, not on the next due date.
    await advance_to(api, second_due + timedelta(days=10))
    [payment] = installments_of(await payments_of(api, plan_id))
    assert len(payment["attempts"]) == 1, payment
    assert all(p["status"] != "retry_scheduled" for p in await payments_of(api, plan_id))
    assert await charges(api, bought["pm"]) == []
    body = await plan(api, plan_id)
    assert body["status"] == "delinquent"
    assert [i["status"] for i in body["installments"][:3]] == ["late", "late", "scheduled"]
    assert [i["fees"] for i in body["installments"][:3]] == [700, 700, 0]
    assert body["late_fees_total"] == 1_400
    await ledger_ok(api)

    good = await api.add_card(consumer, GOOD_CARD)
    body = await set_payment_method(api, consumer, plan_id, good)
    assert body["status"] == "active", body
    assert [i["status"] for i in body["installments"]] == ["paid"] * 2 + ["scheduled"] * 4
    assert [c["amount"] for c in await charges(api, good)] == [2 * 10_700]
    await ledger_ok(api)

    # Autopay is back on, with the new card.
    await advance_to(api, add_months(d, 3))
    assert [c["amount"] for c in await charges(api, good)] == [2 * 10_700, 10_000]
    assert (await plan(api, plan_id))["installments"][2]["status"] == "paid"


async def test_a_retry_waiting_on_a_plan_that_closes_is_canceled(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=FIRST_ONLY_CARD, amount=40_000)
    plan_id, merchant = bought["plan_id"], bought["merchant"]
    await advance_to(api, d + timedelta(days=15))
    [payment] = installments_of(await payments_of(api, plan_id))
    assert payment["status"] == "retry_scheduled"

    # The merchant takes the goods back: the plan is refunded, nothing is owed any more.
    r = await api.client.post(
        f"/v1/checkouts/{bought['checkout_id']}/refunds",
        json={"amount": 40_000, "reason": "returned_item"},
        headers=merchant.headers,
    )
    assert r.status_code == 201, r.text
    assert (await plan(api, plan_id))["status"] == "refunded"
    [payment] = installments_of(await payments_of(api, plan_id))
    assert (payment["status"], payment["next_attempt_at"]) == ("canceled", None), payment

    await advance_to(api, d + timedelta(days=60))
    [payment] = installments_of(await payments_of(api, plan_id))
    assert len(payment["attempts"]) == 2
    assert [(c["amount"], c["status"]) for c in await charges(api, bought["pm"])] == [
        (10_000, "refunded")
    ]
    await ledger_ok(api)
