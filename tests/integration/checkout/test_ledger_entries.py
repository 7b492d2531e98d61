"""The journal entries one purchase writes (DOMAIN.md, "Ledger"): each step of the flow is one
balanced entry, with the exact amounts of DOMAIN.md, posted with the business change."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tests.e2e.checkout.helpers import Flow, round_half_up
from tests.support import Api

Entry = tuple[str, list[tuple[str, str, int]]]


async def entries(api: Api, reference_id: str) -> list[Entry]:
    r = await api.client.get(
        f"/v1/ledger/entries?reference_id={reference_id}&limit=100", headers=api.operator
    )
    assert r.status_code == 200, r.text
    found: list[dict[str, Any]] = r.json()["data"]
    for e in found:
        debits = sum(line["amount"] for line in e["lines"] if line["side"] == "debit")
        credits = sum(line["amount"] for line in e["lines"] if line["side"] == "credit")
        assert debits == credits == e["amount"], e
    return [
        (e["kind"], [(line["account"], line["side"], line["amount"]) for line in e["lines"]])
        for e in found
    ]


def fee(captured: int, mdr_bps: int = 399, fixed: int = 30) -> int:
    return round_half_up(Fraction(captured * mdr_bps, 10_000)) + fixed


async def test_the_entries_of_a_pay_in_4_purchase(api: Api) -> None:
    flow = Flow(api)
    merchant = await api.active_merchant()
    buyer = await flow.buyer()
    body = await flow.authorized(merchant, buyer, 40_000)
    checkout_id, plan_id = body["id"], body["plan_id"]
    [down_payment] = await flow.payments(buyer, plan_id)

    assert await entries(api, plan_id) == [
        (
            "plan.authorized",
            [("consumer_receivable", "debit", 40_000), ("merchant_authorized", "credit", 40_000)],
        )
    ]
    assert await entries(api, down_payment["id"]) == [
        (
            "payment.received",
            [("gateway_clearing", "debit", 10_000), ("consumer_receivable", "credit", 10_000)],
        )
    ]

    assert (await flow.capture(merchant, checkout_id, 30_000)).status_code == 200
    capture_fee = fee(30_000)
    assert capture_fee == 1_227  # 1,197 (399 bps) + 30
    assert await entries(api, checkout_id) == [
        (
            "capture.released",
            [("merchant_authorized", "debit", 10_000), ("consumer_receivable", "credit", 10_000)],
        ),
        (
            "checkout.captured",
            [
                ("merchant_authorized", "debit", 30_000),
                ("merchant_payable", "credit", 30_000),
                ("merchant_payable", "debit", capture_fee),
                ("fee_revenue", "credit", capture_fee),
            ],
        ),
    ]

    r = await flow.refund(merchant, checkout_id, 25_000)
    assert r.status_code == 201, r.text
    assert (r.json()["applied_to_plan"], r.json()["refunded_to_consumer"]) == (20_000, 5_000)
    assert await entries(api, r.json()["id"]) == [
        (
            "checkout.refunded",
            [
                ("merchant_payable", "debit", 25_000),
                ("consumer_receivable", "credit", 20_000),
                ("gateway_clearing", "credit", 5_000),
            ],
        )
    ]
    # The merchant's net: captured - refunded - fees (the fee is not returned).
    merchant_net = await api.rt.db.fetchval(
        "SELECT sum(CASE WHEN l.side = 'credit' THEN l.amount ELSE -l.amount END) "
        "FROM ledger.lines l JOIN ledger.entries e ON e.id = l.entry_id "
        "WHERE e.merchant_id = $1 AND l.account = 'merchant_payable'",
        merchant.id,
    )
    assert merchant_net == 30_000 - 25_000 - capture_fee


async def test_the_entries_of_a_void(api: Api) -> None:
    flow = Flow(api)
    merchant = await api.active_merchant()
    buyer = await flow.buyer()
    body = await flow.authorized(merchant, buyer, 20_001)
    assert (await flow.void(merchant, body["id"])).status_code == 200
    assert await entries(api, body["id"]) == [
        (
            "checkout.voided",
            [
                ("merchant_authorized", "debit", 20_001),
                ("consumer_receivable", "credit", 15_000),
                ("gateway_clearing", "credit", 5_001),
            ],
        )
    ]


async def test_a_decline_writes_nothing(api: Api) -> None:
    flow = Flow(api)
    merchant = await api.active_merchant()
    buyer = await flow.buyer("4000000000000002")
    checkout = await flow.create(merchant, 20_000)
    assert (await flow.confirm(buyer, checkout["id"], "pay_in_4"))["status"] == "declined"
    count = await api.rt.db.fetchval(
        "SELECT count(*) FROM ledger.entries WHERE consumer_id = $1", buyer.id
    )
    assert count == 0
