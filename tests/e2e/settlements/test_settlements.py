"""Settlement over HTTP with the sandbox clock (DOMAIN.md "Merchant fees and settlement",
API.md "Settlements"): each UTC day, per merchant and currency, `net = captures - refunds -
fees`; a positive net is paid out once, a negative one carried into the next settlement; the
report reconciles to the cent. The expected figures are recomputed here from DOMAIN.md."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from tests.e2e.checkout.helpers import round_half_up
from tests.e2e.collections.helpers import advance, ledger_ok, purchase
from tests.support import Api, MerchantHandle, assert_problem

HEADER = ["type", "reference", "checkout_id", "amount", "currency", "created_at"]


def fee(captured: int) -> int:
    """DOMAIN.md: round_half_up(C * 399 / 10000) + 30 (the default terms)."""
    return round_half_up(Fraction(captured * 399, 10_000)) + 30


async def settlements(api: Api, merchant: MerchantHandle) -> list[dict[str, Any]]:
    r = await api.client.get("/v1/settlements", params={"limit": 100}, headers=merchant.headers)
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def report(api: Api, merchant: MerchantHandle, settlement_id: str) -> list[list[str]]:
    r = await api.client.get(
        f"/v1/settlements/{settlement_id}/report.csv", headers=merchant.headers
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == HEADER
    return rows[1:]


async def payouts(api: Api, settlement_id: str) -> list[dict[str, Any]]:
    r = await api.client.get(
        "/v1/sandbox/payouts", params={"settlement_id": settlement_id}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    data: list[dict[str, Any]] = r.json()["data"]
    return data


async def refund(api: Api, merchant: MerchantHandle, checkout_id: str, amount: int) -> None:
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/refunds",
        json={"amount": amount, "reason": "returned_item"},
        headers=merchant.headers,
    )
    assert r.status_code == 201, r.text


def at(value: str) -> datetime:
    """An API timestamp."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_a_days_captures_are_settled_at_midnight_and_paid_out_once(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    first = await purchase(api, merchant=shop, amount=40_000)
    second = await purchase(api, merchant=shop, amount=12_345)
    assert await settlements(api, shop) == []  # the day is not over
    await ledger_ok(api)

    now = at(await advance(api, "P1D"))
    [s] = await settlements(api, shop)
    captured, fees = 40_000 + 12_345, fee(40_000) + fee(12_345)
    assert (fee(40_000), fee(12_345)) == (1_626, 523)
    assert s["id"].startswith("stl_")
    assert (s["merchant_id"], s["currency"]) == (shop.id, "USD")
    assert (s["captured"], s["refunded"], s["fees"], s["carried_over"]) == (captured, 0, fees, 0)
    assert s["net"] == captured - fees == 50_196
    assert s["status"] == "paid" and s["payout_reference"]
    start, end = at(s["period_start"]), at(s["period_end"])
    assert end - start == timedelta(days=1) and start.time().isoformat() == "00:00:00"
    # Run at the midnight that ends the day (the business clock ticks on from a stop), and
    # paid out in the same run.
    assert end <= at(s["created_at"]) <= at(s["paid_at"]) < end + timedelta(seconds=5) <= now

    [payout] = await payouts(api, s["id"])
    assert (payout["amount"], payout["currency"], payout["account_last4"]) == (
        s["net"],
        "USD",
        "6789",
    )
    lines = await report(api, shop, s["id"])
    assert sorted((row[0], row[2], int(row[3])) for row in lines) == sorted(
        [
            ("capture", first["checkout_id"], 40_000),
            ("fee", first["checkout_id"], -1_626),
            ("capture", second["checkout_id"], 12_345),
            ("fee", second["checkout_id"], -523),
        ]
    )
    assert sum(int(row[3]) for row in lines) == s["net"]
    assert all(row[4] == "USD" and start <= at(row[5]) < end for row in lines)
    r = await api.client.get(f"/v1/settlements/{s['id']}", headers=shop.headers)
    assert r.status_code == 200 and r.json() == s
    await ledger_ok(api)

    r = await api.client.get(
        "/v1/events", params={"type": "settlement.paid", "limit": 100}, headers=shop.headers
    )
    assert [e["data"]["id"] for e in r.json()["data"]] == [s["id"]]

    # Nothing new: no settlement the next day, and the payout is not sent again.
    await advance(api, "P1D")
    assert [x["id"] for x in await settlements(api, shop)] == [s["id"]]
    assert len(await payouts(api, s["id"])) == 1


async def test_a_negative_net_is_carried_into_the_next_settlement(quiet_api: Api) -> None:
    api = quiet_api
    shop = await api.active_merchant()
    sale = await purchase(api, merchant=shop, amount=40_000)
    await advance(api, "P1D")
    [day1] = await settlements(api, shop)
    assert day1["net"] == 40_000 - 1_626 and day1["status"] == "paid"

    await refund(api, shop, sale["checkout_id"], 30_000)
    await advance(api, "P1D")
    day1_again, day2 = await settlements(api, shop)
    assert day1_again == day1
    assert (day2["captured"], day2["refunded"], day2["fees"], day2["carried_over"]) == (
        0,
        30_000,
        0,
        0,
    )
    assert (day2["net"], day2["status"], day2["paid_at"]) == (-30_000, "carried_over", None)
    assert await payouts(api, day2["id"]) == []
    await ledger_ok(api)  # the shortfall is now owed to us (merchant_receivable)

    later = await purchase(api, merchant=shop, amount=50_000)
    await advance(api, "P1D")
    *_, day2_again, day3 = await settlements(api, shop)
    assert day2_again["status"] == "carried_over"
    assert (day3["captured"], day3["refunded"], day3["fees"], day3["carried_over"]) == (
        50_000,
        0,
        fee(50_000),
        -30_000,
    )
    assert day3["net"] == 50_000 - 2_025 - 30_000 and day3["status"] == "paid"
    [payout] = await payouts(api, day3["id"])
    assert payout["amount"] == day3["net"]
    lines = await report(api, shop, day3["id"])
    assert [(row[0], row[1], row[2], int(row[3])) for row in lines] == [
        ("carried_over", day2["id"], "", -30_000),
        ("capture", later["checkout_id"], later["checkout_id"], 50_000),
        ("fee", later["checkout_id"], later["checkout_id"], -2_025),
    ]
    assert sum(int(row[3]) for row in lines) == day3["net"]
    await ledger_ok(api)

    # The carried shortfall is netted once: the next day has nothing to settle.
    await advance(api, "P1D")
    assert len(await settlements(api, shop)) == 3


async def test_a_payout_without_an_answer_is_sent_again_with_its_key_and_paid_once(
    quiet_api: Api,
) -> None:
    api = quiet_api
    flaky = await api.active_merchant(
        settlement_account={"account_number": "000123450119", "routing_number": "110000000"}
    )
    await purchase(api, merchant=flaky, amount=20_000)
    await advance(api, "P1D")
    [s] = await settlements(api, flaky)
    assert s["status"] == "paid"
    # The provider answered 500 twice; each retry came 5 minutes after the last.
    retried = at(s["paid_at"]) - at(s["period_end"]) - timedelta(minutes=10)
    assert timedelta(0) <= retried < timedelta(seconds=5)
    [payout] = await payouts(api, s["id"])
    assert payout["amount"] == s["net"] == 20_000 - fee(20_000)
    await ledger_ok(api)


async def test_a_refused_payout_stays_pending_and_owed(quiet_api: Api) -> None:
    api = quiet_api
    closed = await api.active_merchant(
        settlement_account={"account_number": "000123450002", "routing_number": "110000000"}
    )
    await purchase(api, merchant=closed, amount=20_000)
    await advance(api, "P1D")
    [s] = await settlements(api, closed)
    assert (s["status"], s["payout_failure"], s["paid_at"]) == ("pending", "account_closed", None)
    assert s["net"] == 20_000 - fee(20_000)
    await ledger_ok(api)  # still owed: merchant_payable keeps it
    await advance(api, "P2D")  # tried again each day, with a new key, refused again
    [again] = await settlements(api, closed)
    assert (again["status"], again["payout_failure"]) == ("pending", "account_closed")
    assert await payouts(api, s["id"]) == []
    r = await api.client.get("/v1/audit", params={"entity_id": s["id"]}, headers=api.operator)
    actions = [a["action"] for a in r.json()["data"]]
    assert actions.count("settlement.payout_refused") == 3
    assert actions[0] == "settlement.created"


async def test_a_merchant_sees_only_its_own_settlements(quiet_api: Api) -> None:
    api = quiet_api
    shop, other = await api.active_merchant(), await api.active_merchant()
    await purchase(api, merchant=shop, amount=10_000)
    await advance(api, "P1D")
    [s] = await settlements(api, shop)
    assert await settlements(api, other) == []
    for path in (f"/v1/settlements/{s['id']}", f"/v1/settlements/{s['id']}/report.csv"):
        assert_problem(await api.client.get(path, headers=other.headers), 404, "not_found")
        r = await api.client.get(path, headers=api.operator)
        assert r.status_code == 200, r.text
    assert_problem(
        await api.client.get("/v1/settlements/stl_nope", headers=shop.headers), 404, "not_found"
    )
    r = await api.client.get(
        "/v1/settlements", params={"merchant_id": shop.id}, headers=api.operator
    )
    assert [x["id"] for x in r.json()["data"]] == [s["id"]]
    # A merchant's `merchant_id` filter cannot widen what it sees.
    r = await api.client.get(
        "/v1/settlements", params={"merchant_id": shop.id}, headers=other.headers
    )
    assert r.json()["data"] == []
    consumer = await api.consumer()
    assert_problem(
        await api.client.get("/v1/settlements", headers=consumer.headers), 403, "forbidden"
    )
    assert_problem(await api.client.get("/v1/settlements"), 401, "unauthenticated")
