"""Time order: one jump of 60 days ends in the same state as 60 jumps of one day (API.md,
"Sandbox": everything that fell due has run, in due-time order)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bnpl.config import Settings
from tests.conftest import isolated_platform
from tests.e2e.collections.helpers import (
    APR_BPS,
    FIRST_ONLY_CARD,
    GOOD_CARD,
    HARD_DECLINE_CARD,
    advance,
    attempt_dates,
    balances,
    events_of,
    payments_of,
    plan,
    purchase,
)
from tests.support import Api

PLANS = (
    (FIRST_ONLY_CARD, "pay_in_4", 40_000),
    (GOOD_CARD, "pay_in_4", 40_003),
    (HARD_DECLINE_CARD, "monthly_6", 60_000),
    (GOOD_CARD, "monthly_12", 60_000),
)
_IDS = {"id", "plan_id", "checkout_id", "consumer_id", "merchant_id", "payment_method_id"}


async def run(api: Api, start: datetime, steps: list[str]) -> dict[str, Any]:
    """Buy the same plans at the same business time, move the clock by `steps`, and return
    everything observable about the plans, with ids and timestamps left out."""
    r = await api.client.post(
        "/v1/sandbox/clock", json={"to": start.isoformat()}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    merchant = await api.active_merchant(config={"monthly_apr_bps": APR_BPS})
    bought = [
        await purchase(api, card=card, plan=kind, amount=amount, merchant=merchant)
        for card, kind, amount in PLANS
    ]
    for step in steps:
        await advance(api, step)
    state: dict[str, Any] = {"balances": await balances(api), "plans": []}
    for purchased in bought:
        plan_id = purchased["plan_id"]
        body = {k: v for k, v in (await plan(api, plan_id)).items() if k not in _IDS}
        body.pop("created_at", None)
        payments = [
            (
                p["kind"],
                p["amount"],
                p["status"],
                p["failure_code"],
                [(a["outcome"], a["code"]) for a in p["attempts"]],
                attempt_dates(p),
                p["next_attempt_at"] is not None,
            )
            for p in await payments_of(api, plan_id)
        ]
        events = [kind for kind, _ in await events_of(api, plan_id)]
        state["plans"].append({"plan": body, "payments": payments, "events": events})
    return state


async def test_one_jump_of_60_days_equals_60_jumps_of_one_day(
    postgres_server: str, settings: Settings
) -> None:
    start = (datetime.now(UTC) + timedelta(days=1)).replace(
        hour=12, minute=0, second=0, microsecond=0
    )
    # No background scheduler ticks: only the clock moves make due work run.
    quiet = {"scheduler_interval_s": 3600.0}
    async with isolated_platform(postgres_server, settings, **quiet) as api:
        at_once = await run(api, start, ["P60D"])
    async with isolated_platform(postgres_server, settings, **quiet) as api:
        day_by_day = await run(api, start, ["P1D"] * 60)

    # The scenario did exercise the interesting paths...
    statuses = [p["plan"]["status"] for p in at_once["plans"]]
    assert statuses == ["delinquent", "paid_off", "delinquent", "active"], statuses
    assert any(p[2] == "failed" and len(p[4]) == 4 for p in at_once["plans"][0]["payments"])
    assert at_once["plans"][2]["payments"][0][3] == "card_declined"
    # ...and both ways of moving the clock agree on every one of them.
    for once, daily in zip(at_once["plans"], day_by_day["plans"], strict=True):
        assert once == daily
    assert at_once["balances"] == day_by_day["balances"]
