"""Simultaneous decisions for one consumer: the account row lock keeps exposure within the
limit and approvals within the velocity limit (DOMAIN.md rules 5 and 6, "under
concurrency"). Each decision runs in its own transaction, as each confirm does."""

from __future__ import annotations

import asyncio
import dataclasses
import random

import pytest

from bnpl import credit
from bnpl.credit import (
    CreditApplication,
    CreditDecision,
    CreditEngine,
    PostgresFeatureStore,
    accounts,
    service,
)
from bnpl.runtime import Runtime
from tests.integration.credit.helpers import application

PARALLEL = 12  # below the pool size (20), with room for the bus


@pytest.fixture(params=["redis", "postgres"])
def engine(request: pytest.FixtureRequest, rt: Runtime) -> CreditEngine:
    """The app's engine (Redis feature store), or the same on the PostgreSQL store (whose
    row is read in the same round trip as the lock)."""
    if request.param == "redis":
        return credit.engine(rt)
    return dataclasses.replace(credit.engine(rt), features=PostgresFeatureStore())


async def decide_all(
    rt: Runtime, engine: CreditEngine, apps: list[CreditApplication]
) -> list[CreditDecision]:
    start = asyncio.Event()

    async def one(app: CreditApplication) -> CreditDecision:
        await start.wait()
        async with rt.db.transaction() as conn:
            return await service.decide(conn, engine, app, at=rt.clock.now())

    tasks = [asyncio.create_task(one(app)) for app in apps]
    await asyncio.sleep(0)
    start.set()
    return await asyncio.gather(*tasks)


def copies(app: CreditApplication, amounts: list[int]) -> list[CreditApplication]:
    # Distinct checkouts of one consumer.
    return [
        dataclasses.replace(app, checkout_id=application().checkout_id, amount=amount)
        for amount in amounts
    ]


async def open_principal(rt: Runtime, consumer_id: str) -> int:
    async with rt.db.connection() as conn:
        limit, available = await accounts.credit_summary(conn, consumer_id)
    return limit - available


async def test_parallel_confirms_never_exceed_the_credit_limit(
    rt: Runtime, engine: CreditEngine
) -> None:
    app = application()
    async with rt.db.transaction() as conn:
        await accounts.open_account(conn, app.consumer_id)  # 100,000
    decided = await decide_all(rt, engine, copies(app, [30_000] * PARALLEL))
    approved = [d for d in decided if d.outcome == "approved"]
    assert len(approved) == 3
    assert {d.reasons for d in decided if d.outcome != "approved"} == {
        ("insufficient_credit_limit",)
    }
    assert await open_principal(rt, app.consumer_id) == 90_000
    # Each decision saw the exposure its predecessors left.
    seen = sorted(d.features["outstanding_balance"] for d in approved)
    assert seen == [0, 30_000, 60_000]


async def test_parallel_confirms_of_mixed_amounts_fill_the_limit_exactly_once(
    rt: Runtime, engine: CreditEngine
) -> None:
    rng = random.Random(7)
    for _ in range(3):
        app = application()
        amounts = [rng.randrange(5_000, 60_001, 500) for _ in range(PARALLEL)]
        decided = await decide_all(rt, engine, copies(app, amounts))
        approved = sum(d.features["amount"] for d in decided if d.outcome == "approved")
        assert approved <= 100_000
        assert await open_principal(rt, app.consumer_id) == approved
        # A decline for the limit means that amount really did not fit at its turn.
        for d in decided:
            if d.reasons == ("insufficient_credit_limit",):
                assert d.features["outstanding_balance"] + d.features["amount"] > 100_000


async def test_parallel_confirms_never_exceed_the_velocity_limit(
    rt: Runtime, engine: CreditEngine
) -> None:
    app = application()
    decided = await decide_all(rt, engine, copies(app, [5_000] * PARALLEL))
    outcomes = sorted((d.outcome, d.reasons) for d in decided)
    assert outcomes == [("approved", ())] * 5 + [("declined", ("velocity_limit",))] * 7
    assert await open_principal(rt, app.consumer_id) == 25_000


async def test_decisions_of_different_consumers_do_not_wait_on_each_other(
    rt: Runtime, engine: CreditEngine
) -> None:
    apps = [application() for _ in range(PARALLEL)]
    decided = await decide_all(rt, engine, apps)
    assert all(d.outcome == "approved" for d in decided)
    for app in apps:
        assert await open_principal(rt, app.consumer_id) == app.amount
