"""Refunds of a checkout whose plan was charged off (DOMAIN.md "Refund allocation", "Late
fees and delinquency"; API.md: refunds after capture, any number of times up to the captured
amount, never a 500).

The charge-off already wrote the plan's receivables off (Dr bad_debt_expense) and released its
unpaid principal from the consumer's credit exposure. A merchant refund then still follows
the refund allocation (`applied_to_plan` from the last installment backwards, the rest back to
the card), but the applied part recovers written-off debt (Cr bad_debt_expense, not
consumer_receivable), the late fees and due interest it waives were written off too (the
write-off becomes a waiver), and the exposure is not released a second time. The plan stays
`charged_off`.

The clock moves 140+ days, so these run on a platform of their own whose scheduler only runs
when the clock is moved (nothing races with what a test does in between).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import pytest

from bnpl.config import Settings
from tests.conftest import isolated_platform
from tests.e2e.checkout.helpers import after_release, call
from tests.e2e.collections.helpers import (
    FIRST_ONLY_CARD,
    GOOD_CARD,
    add_months,
    advance_to,
    authorize,
    balances,
    entries_for,
    ledger_ok,
    plan,
    purchase,
    start_day,
)
from tests.support import Api, ConsumerHandle, MerchantHandle, assert_problem

APR_BPS = 1999


@pytest.fixture(scope="module")
async def iso_api(postgres_server: str, settings: Settings) -> AsyncIterator[Api]:
    async with isolated_platform(postgres_server, settings, scheduler_interval_s=3600.0) as api:
        yield api


async def available_credit(api: Api, consumer: ConsumerHandle) -> int:
    r = await call(api.client, "GET", "/v1/me", headers=consumer.headers)
    assert r.status_code == 200, r.text
    amount: int = r.json()["available_credit"]
    return amount


async def refund(
    api: Api, merchant: MerchantHandle, checkout_id: str, amount: int
) -> dict[str, Any]:
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/refunds",
        json={"amount": amount, "reason": "returned_item"},
        headers=merchant.headers,
    )
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


async def refund_as_allocated(
    api: Api, merchant: MerchantHandle, bought: dict[str, Any], amount: int
) -> dict[str, Any]:
    """Refund `amount`; the answer splits it as DOMAIN.md's allocation of the plan says."""
    before = await plan(api, bought["plan_id"])
    _, applied, to_consumer = after_release(before["installments"], amount)
    body = await refund(api, merchant, bought["checkout_id"], amount)
    assert (body["amount"], body["applied_to_plan"], body["refunded_to_consumer"]) == (
        amount,
        applied,
        to_consumer,
    )
    return body


def lines(entry: dict[str, Any]) -> set[tuple[str, str, int]]:
    return {(line["account"], line["side"], line["amount"]) for line in entry["lines"]}


async def charged_off(api: Api, plan_id: str, first_missed: date) -> dict[str, Any]:
    await advance_to(api, first_missed + timedelta(days=120))
    body = await plan(api, plan_id)
    assert body["status"] == "charged_off", body
    return body


async def test_refunds_of_a_charged_off_pay_in_4(iso_api: Api) -> None:
    api = iso_api
    d = await start_day(api)
    bought = await purchase(api, card=FIRST_ONLY_CARD, amount=1_000)
    merchant, consumer = bought["merchant"], bought["consumer"]
    checkout_id, plan_id = bought["checkout_id"], bought["plan_id"]
    assert await available_credit(api, consumer) == 100_000 - 750

    body = await charged_off(api, plan_id, first_missed=d + timedelta(days=14))
    # 700 per late installment, capped at 25% of 1,000: the whole cap on installment 2.
    assert body["late_fees_total"] == 250
    assert [(i["status"], i["fees"]) for i in body["installments"]] == [
        ("paid", 0),
        ("late", 250),
        ("late", 0),
        ("late", 0),
    ]
    assert await available_credit(api, consumer) == 100_000  # released by the charge-off
    await ledger_ok(api)
    booked = await balances(api)
    assert booked["bad_debt_expense"] == 750 + 250
    payable = booked["merchant_payable"]

    # A partial refund: it only reduces written-off principal (installment 4, then 3).
    first = await refund_as_allocated(api, merchant, bought, 300)
    assert (first["applied_to_plan"], first["refunded_to_consumer"]) == (300, 0)
    [entry] = await entries_for(api, first["id"])
    assert entry["kind"] == "checkout.refunded"
    assert lines(entry) == {
        ("merchant_payable", "debit", 300),
        ("bad_debt_expense", "credit", 300),
    }
    body = await plan(api, plan_id)
    assert body["status"] == "charged_off"
    assert [(i["status"], i["principal"]) for i in body["installments"]] == [
        ("paid", 250),
        ("late", 250),
        ("late", 200),
        ("canceled", 0),
    ]
    assert await available_credit(api, consumer) == 100_000  # not released twice
    await ledger_ok(api)
    r = await api.client.get(f"/v1/checkouts/{checkout_id}", headers=merchant.headers)
    assert r.json()["status"] == "partially_refunded"

    # The rest: 450 of written-off principal (installment 2's late fee is waived with it),
    # and the 250 the consumer paid goes back to their card.
    second = await refund_as_allocated(api, merchant, bought, 700)
    assert (second["applied_to_plan"], second["refunded_to_consumer"]) == (450, 250)
    [entry] = await entries_for(api, second["id"])
    assert lines(entry) == {
        ("merchant_payable", "debit", 700),
        ("bad_debt_expense", "credit", 450),
        ("gateway_clearing", "credit", 250),
    }
    # The waived fee had been written off: the write-off becomes the waiver.
    [waiver] = [e for e in await entries_for(api, plan_id) if e["kind"] == "plan.waiver"]
    assert lines(waiver) == {("waived_fees", "debit", 250), ("bad_debt_expense", "credit", 250)}
    body = await plan(api, plan_id)
    assert body["status"] == "charged_off"
    assert body["outstanding_balance"] == 0
    assert [(i["status"], i["fees"]) for i in body["installments"]] == [
        ("paid", 0),
        ("canceled", 0),
        ("canceled", 0),
        ("canceled", 0),
    ]
    assert await available_credit(api, consumer) == 100_000
    await ledger_ok(api)
    after = await balances(api)
    assert after["bad_debt_expense"] == 0  # the merchant's refund recovered it all
    assert after.get("waived_fees", 0) == 250
    assert after.get("consumer_receivable", 0) == 0
    assert after.get("fees_receivable", 0) == 0
    assert payable - after["merchant_payable"] == 1_000

    r = await api.client.get(f"/v1/checkouts/{checkout_id}", headers=merchant.headers)
    assert (r.json()["status"], r.json()["refunded_amount"]) == ("refunded", 1_000)
    assert_problem(
        await api.client.post(
            f"/v1/checkouts/{checkout_id}/refunds", json={"amount": 1}, headers=merchant.headers
        ),
        422,
        "amount_exceeds_refundable",
    )

    await api.settle()
    r = await api.client.get("/v1/payments", params={"plan_id": plan_id}, headers=api.operator)
    refunds = [(p["amount"], p["status"]) for p in r.json()["data"] if p["kind"] == "refund"]
    assert refunds == [(250, "succeeded")]

    # The charge-off stays on the consumer's record: new purchases are still declined.
    good = await api.add_card(consumer, GOOD_CARD)
    checkout = await authorize(
        api, merchant=merchant, consumer=consumer, pm=good, amount=10_000, plan="pay_in_4"
    )
    assert checkout["decision"]["reasons"] == ["delinquent_account"]
    await ledger_ok(api)


async def test_full_refund_of_a_charged_off_monthly_plan_with_interest(iso_api: Api) -> None:
    """Interest of installments due before the charge-off was booked and written off; that
    of installments due after it never was. The refund waives both; only the first was a
    write-off to turn into a waiver."""
    api = iso_api
    d = await start_day(api)
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    amount = 60_000
    bought = await purchase(
        api, card=FIRST_ONLY_CARD, amount=amount, plan="monthly_6", merchant=merchant
    )
    consumer, plan_id = bought["consumer"], bought["plan_id"]
    assert await available_credit(api, consumer) == 100_000 - amount

    first_missed = add_months(d, 2)
    body = await charged_off(api, plan_id, first_missed)
    charge_off_day = first_missed + timedelta(days=120)
    statuses = [i["status"] for i in body["installments"]]
    assert statuses[0] == "paid" and statuses[1:] == ["late"] * 4 + ["scheduled"]
    assert date.fromisoformat(body["installments"][5]["due_date"]) > charge_off_day
    await ledger_ok(api)
    limit_after_charge_off = await available_credit(api, consumer)
    assert limit_after_charge_off == 100_000
    written_off_interest = sum(i["interest"] for i in body["installments"][1:5])
    fees = sum(i["fees"] for i in body["installments"])
    assert fees == 4 * 700

    paid_principal = body["installments"][0]["principal"]
    result = await refund_as_allocated(api, merchant, bought, amount)
    assert (result["applied_to_plan"], result["refunded_to_consumer"]) == (
        amount - paid_principal,
        paid_principal,
    )
    [entry] = await entries_for(api, result["id"])
    assert lines(entry) == {
        ("merchant_payable", "debit", amount),
        ("bad_debt_expense", "credit", amount - paid_principal),
        ("gateway_clearing", "credit", paid_principal),
    }
    # Only the interest that was booked (and written off) is a waiver of a write-off.
    [waiver] = [e for e in await entries_for(api, plan_id) if e["kind"] == "plan.waiver"]
    assert lines(waiver) == {
        ("waived_interest", "debit", written_off_interest),
        ("waived_fees", "debit", fees),
        ("bad_debt_expense", "credit", written_off_interest + fees),
    }
    body = await plan(api, plan_id)
    assert body["status"] == "charged_off" and body["outstanding_balance"] == 0
    assert [i["status"] for i in body["installments"]] == ["paid"] + ["canceled"] * 5
    assert await available_credit(api, consumer) == limit_after_charge_off
    await ledger_ok(api)
