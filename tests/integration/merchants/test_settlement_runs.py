"""The settlement runs on their own (below the HTTP surface): redelivered and late events,
two workers at once, and a payout interrupted after it was sent."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from typing import Any

from bnpl.kit.ids import new_id
from bnpl.merchants.settlements import repository
from bnpl.merchants.settlements.service import (
    PayOutSettlements,
    SettleDays,
    next_day,
    record_items,
)
from bnpl.messaging import Event
from bnpl.runtime import Runtime
from tests.support import Api


def _midnight_after(moment: datetime) -> datetime:
    return datetime.combine(moment.date() + timedelta(days=1), time(0), tzinfo=UTC)


def _captured(merchant: str, amount: int, at: datetime, currency: str = "USD") -> Event:
    checkout = new_id("chk")
    data: dict[str, Any] = {
        "id": checkout,
        "merchant_id": merchant,
        "currency": currency,
        "captured_amount": amount,
        "fee": 30,
    }
    return Event(new_id("evt"), "checkout.captured", checkout, data, at, merchant)


async def _merchant(api: Api) -> str:
    r = await api.client.post("/v1/merchants", json=api.merchant_payload(), headers=api.operator)
    assert r.status_code == 201, r.text
    merchant: str = r.json()["id"]
    return merchant


async def _record(rt: Runtime, *events: Event) -> None:
    async with rt.db.transaction() as conn:
        for event in events:
            await record_items(conn, event)


async def _of(rt: Runtime, merchant: str) -> list[Any]:
    async with rt.db.connection() as conn:
        found = await repository.list_settlements(
            conn, merchant_id=merchant, status=None, after=None, limit=100
        )
    return list(found)


async def test_a_late_or_redelivered_event_is_settled_once(quiet_api: Api) -> None:
    rt = quiet_api.rt
    merchant = await _merchant(quiet_api)
    day_start = datetime.combine(rt.clock.now().date() + timedelta(days=10), time(0), tzinfo=UTC)
    sale = _captured(merchant, 10_000, day_start + timedelta(hours=10))
    await _record(rt, sale, sale)  # delivered twice
    await _record(rt, _captured(merchant, 5_000, day_start + timedelta(hours=11), "EUR"))
    work = SettleDays()
    end = _midnight_after(day_start)
    assert await work.next_due_at(rt.db) == end
    assert await work.run_due(rt.db, end - timedelta(microseconds=1), 10) == 0  # not yet
    assert await work.run_due(rt.db, end, 10) == 1
    usd, eur = sorted(await _of(rt, merchant), key=lambda s: s.currency, reverse=True)
    assert (usd.currency, usd.totals.captured, usd.totals.fees, usd.net) == (
        "USD",
        10_000,
        30,
        9_970,
    )
    assert (eur.currency, eur.net) == ("EUR", 4_970)
    assert await work.next_due_at(rt.db) is None

    # An event of that day that arrives after it was settled goes into the next settlement.
    late = _captured(merchant, 2_000, end - timedelta(seconds=1))
    await _record(rt, late, sale)  # and the first one, redelivered again, adds nothing
    async with rt.db.connection() as conn:
        assert await next_day(conn) == end.date()
    assert await work.next_due_at(rt.db) == end + timedelta(days=1)
    assert await work.run_due(rt.db, end + timedelta(days=1), 10) == 1
    settled = await _of(rt, merchant)
    assert sorted((s.period_start, s.currency, s.totals.captured) for s in settled) == [
        (day_start, "EUR", 5_000),
        (day_start, "USD", 10_000),
        (end, "USD", 2_000),
    ]
    rows = await rt.db.fetch(
        "SELECT settlement_id, count(*) AS n FROM merchants.settlement_items "
        "WHERE merchant_id = $1 GROUP BY settlement_id",
        merchant,
    )
    assert sorted(r["n"] for r in rows) == [2, 2, 2]  # a capture and its fee each
    assert all(r["settlement_id"] is not None for r in rows)


async def test_two_workers_settle_a_day_once(quiet_api: Api) -> None:
    rt = quiet_api.rt
    merchant = await _merchant(quiet_api)
    day_start = datetime.combine(rt.clock.now().date() + timedelta(days=20), time(0), tzinfo=UTC)
    await _record(rt, *(_captured(merchant, 1_000 + i, day_start) for i in range(50)))
    end = _midnight_after(day_start)
    done = await asyncio.gather(*(SettleDays().run_due(rt.db, end, 10) for _ in range(4)))
    assert sum(done) == 1
    [s] = await _of(rt, merchant)
    assert s.totals.captured == sum(1_000 + i for i in range(50))
    assert s.totals.fees == 50 * 30


async def test_a_payout_sent_before_a_crash_is_paid_once(quiet_api: Api) -> None:
    rt = quiet_api.rt
    merchant = await _merchant(quiet_api)
    day_start = datetime.combine(rt.clock.now().date() + timedelta(days=30), time(0), tzinfo=UTC)
    work = PayOutSettlements(rt)
    await work.run_due(rt.db, day_start, 100)  # earlier tests' payouts, out of the way
    assert await work.next_due_at(rt.db) is None
    await _record(rt, _captured(merchant, 25_000, day_start))
    end = _midnight_after(day_start)
    assert await SettleDays().run_due(rt.db, end, 10) == 1
    [pending] = await _of(rt, merchant)
    assert pending.status.value == "pending"

    # A worker claimed the payout and sent it, then died before recording the answer.
    async with rt.db.transaction() as conn:
        [claimed] = await repository.claim_payouts(conn, end, end + timedelta(minutes=2), 10)
    first = await rt.providers.payouts.pay_out(
        amount=claimed.net,
        currency="USD",
        account_number="000123456789",
        routing_number="110000000",
        reference=claimed.id,
        idempotency_key=claimed.payout_key,
    )
    assert await work.run_due(rt.db, end + timedelta(minutes=1), 10) == 0  # still leased
    assert await work.next_due_at(rt.db) == end + timedelta(minutes=2)
    assert await work.run_due(rt.db, end + timedelta(minutes=2), 10) == 1  # the lease ran out
    [paid] = await _of(rt, merchant)
    assert (paid.status.value, paid.payout_reference) == ("paid", first.reference)
    rows = await rt.db.fetch("SELECT * FROM sandbox.payouts WHERE reference = $1", paid.id)
    assert [(r["status"], r["attempts"], r["amount"]) for r in rows] == [("paid", 2, 24_970)]
    assert await work.next_due_at(rt.db) is None


async def test_a_checkout_event_lost_to_settlement_fails_the_ledger_check(quiet_api: Api) -> None:
    api = quiet_api

    async def check() -> dict[str, Any]:
        r = await api.client.get("/v1/ledger/verify", headers=api.operator)
        [found] = [c for c in r.json()["checks"] if c["name"] == "merchants.settlement_items"]
        result: dict[str, Any] = found
        return result

    assert (await check())["ok"] is True
    await api.rt.db.execute(
        "INSERT INTO messaging.dead_letters (consumer, event_id, error) VALUES ($1, $2, 'boom')",
        "merchants.record_settlement_items",
        new_id("evt"),
    )
    failed = await check()
    assert failed["ok"] is False and "1 checkout events" in failed["detail"]
    await api.rt.db.execute("DELETE FROM messaging.dead_letters")
    assert (await check())["ok"] is True
