"""Payments the consumer makes: the next installment early, a payoff (future interest waived),
idempotency, and what a failed one leaves behind (API.md, "Plans"; DOMAIN.md, "Collections")."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from tests.e2e.collections.helpers import (
    APR_BPS,
    FIRST_ONLY_CARD,
    GOOD_CARD,
    HARD_DECLINE_CARD,
    NO_FUNDS_CARD,
    add_months,
    advance_to,
    charges,
    credited,
    entries_for,
    ledger_ok,
    monthly_schedule,
    pay,
    payments_of,
    plan,
    purchase,
    start_day,
)
from tests.support import Api, assert_problem


async def test_next_installment_early_then_payoff(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, amount=40_000)
    plan_id, consumer, pm = bought["plan_id"], bought["consumer"], bought["pm"]
    await advance_to(api, d + timedelta(days=2))

    first = await pay(api, consumer, plan_id, "next_installment", pm, key="early-1")
    assert first.status_code == 201, first.text
    payment = first.json()
    assert payment["kind"] == "installment"
    assert (payment["amount"], payment["status"]) == (10_000, "succeeded")
    assert payment["plan_id"] == plan_id and payment["failure_code"] is None
    # The replay answers the same, and charges nothing again.
    again = await pay(api, consumer, plan_id, "next_installment", pm, key="early-1")
    assert again.status_code == 201
    assert again.headers.get("idempotent-replayed") == "true"
    assert again.json() == payment
    assert [c["amount"] for c in await charges(api, pm)] == [10_000, 10_000]
    body = await plan(api, plan_id)
    assert [i["status"] for i in body["installments"]] == ["paid", "paid", "scheduled", "scheduled"]
    assert body["outstanding_balance"] == 20_000

    # Paid early: autopay does not charge installment 2 on its due date.
    await advance_to(api, d + timedelta(days=14))
    assert len(await charges(api, pm)) == 2

    payoff = await pay(api, consumer, plan_id, "payoff", pm)
    assert payoff.status_code == 201, payoff.text
    assert (payoff.json()["kind"], payoff.json()["amount"], payoff.json()["status"]) == (
        "prepayment",
        20_000,
        "succeeded",
    )
    body = await plan(api, plan_id)
    assert body["status"] == "paid_off"
    assert [i["amount_paid"] for i in body["installments"]] == [10_000] * 4
    assert [c["amount"] for c in await charges(api, pm)] == [10_000, 10_000, 20_000]

    for kind in ("next_installment", "payoff"):
        assert_problem(await pay(api, consumer, plan_id, kind, pm), 409, "nothing_due")
    await advance_to(api, d + timedelta(days=50))
    assert len(await charges(api, pm)) == 3  # nothing more, ever
    await ledger_ok(api)


async def test_payments_on_someone_elses_plan_or_of_an_unknown_kind(iso_api: Api) -> None:
    api = iso_api
    await start_day(api)
    bought = await purchase(api, amount=20_000)
    stranger = await api.consumer()
    their_card = await api.add_card(stranger)
    r = await pay(api, stranger, bought["plan_id"], "next_installment", their_card)
    assert_problem(r, 404)
    assert_problem(await pay(api, stranger, "pln_nope", "payoff", their_card), 404)
    r = await api.client.post(
        f"/v1/plans/{bought['plan_id']}/payments",
        json={"kind": "everything", "payment_method_id": bought["pm"]},
        headers=bought["consumer"].headers,
    )
    assert_problem(r, 422)
    r = await api.client.put(
        f"/v1/plans/{bought['plan_id']}/payment_method",
        json={"payment_method_id": their_card},
        headers=stranger.headers,
    )
    assert_problem(r, 404)
    # Someone else's card on one's own plan is no card at all.
    r = await pay(api, bought["consumer"], bought["plan_id"], "next_installment", their_card)
    assert_problem(r, 422, "invalid_payment_method")
    r = await api.client.put(
        f"/v1/plans/{bought['plan_id']}/payment_method",
        json={"payment_method_id": their_card},
        headers=bought["consumer"].headers,
    )
    assert_problem(r, 422, "invalid_payment_method")
    assert len(await charges(api, bought["pm"])) == 1  # the down payment only


async def test_payoff_mid_way_waives_future_interest(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    bought = await purchase(api, amount=60_000, plan="monthly_12", merchant=merchant)
    schedule = monthly_schedule(60_000, APR_BPS, 12, d)

    await advance_to(api, add_months(d, 3) + timedelta(days=10))  # three installments collected
    expected = sum(p for _, p, _ in schedule[3:])  # unpaid principal; no interest is due unpaid
    r = await pay(api, bought["consumer"], bought["plan_id"], "payoff", bought["pm"])
    assert r.status_code == 201, r.text
    assert (r.json()["amount"], r.json()["status"]) == (expected, "succeeded")
    body = await plan(api, bought["plan_id"])
    assert body["status"] == "paid_off"
    # Interest of installments already paid stays; that of the nine future ones is waived.
    interest = [i["interest"] for i in body["installments"]]
    assert interest == [r for _, _, r in schedule[:3]] + [0] * 9
    assert [i["principal"] for i in body["installments"]] == [p for _, p, _ in schedule]
    assert [c["amount"] for c in await charges(api, bought["pm"])] == [
        p + r for _, p, r in schedule[:3]
    ] + [expected]
    await ledger_ok(api)


async def test_payoff_of_an_overdue_plan_pays_due_interest_and_fees(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    bought = await purchase(
        api, card=FIRST_ONLY_CARD, amount=60_000, plan="monthly_12", merchant=merchant
    )
    schedule = monthly_schedule(60_000, APR_BPS, 12, d)
    plan_id, consumer = bought["plan_id"], bought["consumer"]

    # Installment 1 is collected; installment 2 is declined, retried, and late.
    await advance_to(api, add_months(d, 2) + timedelta(days=12))
    body = await plan(api, plan_id)
    assert body["status"] == "delinquent"
    assert [i["status"] for i in body["installments"][:3]] == ["paid", "late", "scheduled"]

    # Unpaid principal + the due installment's interest + its late fee; the rest is waived.
    expected_interest = schedule[1][2]
    expected_principal = sum(p for _, p, _ in schedule[1:])
    expected = expected_principal + expected_interest + 700
    good = await api.add_card(consumer, GOOD_CARD)
    r = await pay(api, consumer, plan_id, "payoff", good)
    assert r.status_code == 201, r.text
    payment = r.json()
    assert (payment["kind"], payment["amount"], payment["status"]) == (
        "prepayment",
        expected,
        "succeeded",
    )
    body = await plan(api, plan_id)
    assert body["status"] == "paid_off", body
    assert [i["interest"] for i in body["installments"]][2:] == [0] * 10
    assert body["installments"][1]["amount_paid"] == schedule[1][1] + expected_interest + 700
    # Fees, then interest, then principal.
    [entry] = [e for e in await entries_for(api, payment["id"]) if e["kind"] == "payment.received"]
    assert credited(entry, "fees_receivable") == 700
    assert credited(entry, "interest_receivable") == expected_interest
    assert credited(entry, "consumer_receivable") == expected_principal
    assert [c["amount"] for c in await charges(api, good)] == [expected]
    await ledger_ok(api)


async def test_a_failed_consumer_payment_is_not_retried_and_leaves_autopay_alone(
    iso_api: Api,
) -> None:
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant()
    healthy = await purchase(api, amount=40_000, merchant=merchant)
    blocked = await purchase(
        api, card=HARD_DECLINE_CARD, amount=60_000, plan="monthly_6", merchant=merchant
    )
    await advance_to(api, add_months(d, 1))  # the monthly plan's card is hard-declined
    assert (await payments_of(api, blocked["plan_id"]))[-1]["failure_code"] == "card_declined"

    for bought in (healthy, blocked):
        poor = await api.add_card(bought["consumer"], NO_FUNDS_CARD)
        r = await pay(api, bought["consumer"], bought["plan_id"], "next_installment", poor)
        assert r.status_code == 201, r.text
        failed = r.json()
        assert (failed["status"], failed["failure_code"], failed["next_attempt_at"]) == (
            "failed",
            "insufficient_funds",
            None,
        )
        bought["failed"] = failed["id"]

    await advance_to(api, add_months(d, 2) + timedelta(days=8))
    for bought in (healthy, blocked):
        found = {p["id"]: p for p in await payments_of(api, bought["plan_id"])}
        assert len(found[bought["failed"]]["attempts"]) == 1  # never retried
    # The healthy plan went on collecting with its own card...
    assert (await plan(api, healthy["plan_id"]))["status"] == "paid_off"
    assert len(await charges(api, healthy["pm"])) == 4
    # ...and the hard-declined one is still blocked: its card was attempted once, ever.
    autopay = [
        p
        for p in await payments_of(api, blocked["plan_id"])
        if p["kind"] == "installment" and p["id"] != blocked["failed"]
    ]
    assert [len(p["attempts"]) for p in autopay] == [1], autopay
    await ledger_ok(api)


async def test_simultaneous_payments_never_pay_one_installment_twice(iso_api: Api) -> None:
    api = iso_api
    await start_day(api)
    bought = await purchase(api, amount=40_000)
    plan_id, consumer, pm = bought["plan_id"], bought["consumer"], bought["pm"]
    answers = await asyncio.gather(
        *(pay(api, consumer, plan_id, "next_installment", pm) for _ in range(3))
    )
    paid = [r.json() for r in answers if r.status_code == 201]
    for r in answers:
        if r.status_code != 201:
            assert_problem(r, 409, "payment_in_progress")
    assert paid and all(p["status"] == "succeeded" for p in paid)
    # Each payment that went through paid an installment of its own, and only those were charged.
    body = await plan(api, plan_id)
    assert [i["status"] for i in body["installments"]].count("paid") == 1 + len(paid)
    assert [c["amount"] for c in await charges(api, pm)] == [10_000] * (1 + len(paid))
    await ledger_ok(api)
