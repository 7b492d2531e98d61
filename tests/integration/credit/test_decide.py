"""`credit.decide` on the real database, feature store and sandbox bureau: the rules' order,
when the bureau is asked, its cache, its latency budget and its circuit breaker."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from bnpl import credit
from bnpl.credit import CreditApplication, CreditDecision, CreditEngine, service
from bnpl.providers.bureau import BreakerState, CircuitBreaker, GuardedBureau
from bnpl.runtime import Runtime
from tests.integration.credit.helpers import application, bureau


def fresh_engine(rt: Runtime, **changes: Any) -> CreditEngine:
    """The app's engine with a breaker of its own (tests that fail the bureau on purpose
    must not open the shared one) and a generous budget unless a test sets one."""
    shared = credit.engine(rt)
    changes.setdefault("bureau", GuardedBureau(shared.bureau.inner, CircuitBreaker()))
    changes.setdefault("bureau_budget_s", 2.0)
    return dataclasses.replace(shared, **changes)


async def decide(rt: Runtime, engine: CreditEngine, app: CreditApplication) -> CreditDecision:
    async with rt.db.transaction() as conn:
        return await service.decide(conn, engine, app, at=rt.clock.now())


@pytest.fixture
async def rolled_back(rt: Runtime) -> AsyncIterator[asyncpg.Connection]:
    """A connection in a transaction that is rolled back: decisions that leave no trace."""
    async with rt.db.connection() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            yield conn
        finally:
            await tx.rollback()


async def test_the_shared_engine_is_wired_from_settings(rt: Runtime) -> None:
    engine = credit.engine(rt)
    assert engine.bureau_budget_s == rt.settings.bureau_budget_ms / 1000
    assert engine.policy.max_approvals_24h == rt.settings.velocity_max_approvals_24h == 5
    assert engine.policy.risk_cutoff == 0.65  # sandbox default; see docs/credit.md
    assert isinstance(engine.features, credit.RedisFeatureStore)  # the tests configure Redis


# -- rules ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # Each row breaks its rule and every later one: the earliest rule must win.
        (
            {"kyc_status": "pending", "date_of_birth": date(2015, 1, 1), "amount": 10**7},
            "kyc_not_verified",
        ),
        ({"date_of_birth": date(2015, 1, 1), "amount": 10**7}, "underage"),
        ({"amount": 4_999, "has_delinquent_plan": True}, "amount_out_of_range"),
        ({"amount_range": (5_000, 8_000), "amount": 9_000}, "amount_out_of_range"),
        ({"has_delinquent_plan": True, "amount": 500_000}, "delinquent_account"),
        ({"amount": 500_000}, "insufficient_credit_limit"),
    ],
)
async def test_the_first_failing_rule_gives_the_reason(
    rt: Runtime, changes: dict[str, Any], reason: str
) -> None:
    engine = fresh_engine(rt)
    calls = await bureau(rt).sandbox_calls()
    decided = await decide(rt, engine, application(**changes))
    assert (decided.outcome, decided.reasons) == ("declined", (reason,))
    # Declined by a rule 1-6: the bureau was not consulted, but the model scored the decision
    # (without a bureau score); the rule is the only reason, whatever the score.
    assert decided.bureau == "not_consulted"
    assert decided.features["bureau_score"] is None
    assert await bureau(rt).sandbox_calls() == calls
    assert decided.model_version == engine.model.version
    assert decided.score == engine.model.predict_default_probability(decided.features)
    async with rt.db.connection() as conn:
        row = await service.get_decision(conn, decided.id)
    assert row is not None
    assert (row["score"], row["model_version"]) == (decided.score, decided.model_version)


async def test_a_rule_decline_keeps_its_reason_even_with_a_score_above_the_cutoff(
    rt: Runtime,
) -> None:
    # A cutoff of 0 puts every score above it: the decline still names the first failing
    # rule, not rule 7, and the score is recorded.
    strict = fresh_engine(rt, policy=dataclasses.replace(credit.engine(rt).policy, risk_cutoff=0.0))
    decided = await decide(rt, strict, application(amount=500_000))
    assert decided.reasons == ("insufficient_credit_limit",)
    assert decided.score > strict.policy.risk_cutoff
    assert decided.bureau == "not_consulted"


async def test_only_a_verified_consumer_gets_an_account_opened_by_a_decision(
    rt: Runtime,
) -> None:
    engine = fresh_engine(rt)
    pending, verified = application(kyc_status="pending"), application()
    assert (await decide(rt, engine, pending)).features["credit_limit"] == 0
    assert (await decide(rt, engine, verified)).features["credit_limit"] == 100_000
    async with rt.db.connection() as conn:
        assert await credit.credit_summary(conn, pending.consumer_id) == (0, 0)
        assert await credit.credit_summary(conn, verified.consumer_id) == (100_000, 90_000)


async def test_velocity_comes_before_the_credit_limit(rt: Runtime) -> None:
    engine = fresh_engine(rt)
    app = application(amount=5_000)
    for _ in range(5):
        assert (await decide(rt, engine, new_checkout(app))).outcome == "approved"
    over_both = dataclasses.replace(new_checkout(app), amount=100_000)
    decided = await decide(rt, engine, over_both)
    assert decided.reasons == ("velocity_limit",)
    assert decided.features["approved_checkouts_24h"] == 5


async def test_velocity_counts_only_the_last_24_hours_and_is_configurable(rt: Runtime) -> None:
    strict = fresh_engine(
        rt, policy=dataclasses.replace(credit.engine(rt).policy, max_approvals_24h=2)
    )
    app = application(amount=5_000)
    now = rt.clock.now()
    async with rt.db.transaction() as conn:
        for hours_ago in (30, 25):  # outside the window
            old = await service.decide(
                conn, strict, new_checkout(app), at=now - timedelta(hours=hours_ago)
            )
            assert old.outcome == "approved"
    for _ in range(2):
        assert (await decide(rt, strict, new_checkout(app))).outcome == "approved"
    third = await decide(rt, strict, new_checkout(app))
    assert third.reasons == ("velocity_limit",)
    # A decision declined later (its down payment failed) is not an approval.
    async with rt.db.transaction() as conn:
        last = await conn.fetchval(
            "SELECT id FROM credit.decisions WHERE consumer_id = $1 AND outcome = 'approved' "
            "ORDER BY created_at DESC LIMIT 1",
            app.consumer_id,
        )
        await credit.record_payment_decline(
            conn, last, consumer_id=app.consumer_id, amount=5_000, at=now
        )
    assert (await decide(rt, strict, new_checkout(app))).outcome == "approved"


async def test_a_risky_model_score_declines_with_the_score_recorded(rt: Runtime) -> None:
    strict = fresh_engine(rt, policy=dataclasses.replace(credit.engine(rt).policy, risk_cutoff=0.0))
    decided = await decide(rt, strict, application())
    assert decided.reasons == ("risk_score_too_high",)
    assert decided.score is not None and decided.score > 0.0
    assert decided.model_version == strict.model.version
    async with rt.db.connection() as conn:
        row = await service.get_decision(conn, decided.id)
    assert row is not None
    assert (row["outcome"], list(row["reasons"])) == ("declined", ["risk_score_too_high"])
    assert row["score"] == decided.score
    assert row["features"] == decided.features


def new_checkout(app: CreditApplication) -> CreditApplication:
    return dataclasses.replace(app, checkout_id=application().checkout_id)


# -- the bureau: thin files only, cached, bounded, breaker --------------------------------------


async def test_a_thick_file_never_asks_the_bureau(rt: Runtime) -> None:
    engine = fresh_engine(rt)
    app = application()
    async with rt.db.connection() as conn:
        for n in range(4):
            await engine.features.record_repayment(
                conn, app.consumer_id, on_time=n != 0, event_id=f"evt_thick_{app.consumer_id}_{n}"
            )
    decided = await decide(rt, engine, app)
    assert decided.bureau == "not_needed"
    assert decided.features["thin_file"] == 0
    assert (decided.features["on_time_payments"], decided.features["late_payments"]) == (3, 1)
    assert decided.features["bureau_score"] is None
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 0


async def test_a_thin_file_is_fetched_once_then_cached(rt: Runtime) -> None:
    engine = fresh_engine(rt)
    app = application()
    first = await decide(rt, engine, app)
    assert first.bureau == "fetched"
    assert 740 <= first.features["bureau_score"] <= 820
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 1
    async with rt.db.connection() as conn:
        history = await engine.features.history(conn, app.consumer_id)
    assert history.bureau_score == first.features["bureau_score"]
    second = await decide(rt, engine, new_checkout(app))
    assert (second.bureau, second.features["bureau_score"]) == (
        "cached",
        first.features["bureau_score"],
    )
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 1


async def test_a_stale_bureau_answer_is_asked_for_again(rt: Runtime) -> None:
    engine = fresh_engine(rt)
    app = application()
    async with rt.db.connection() as conn:
        await engine.features.record_bureau(
            conn, app.consumer_id, 650, rt.clock.now() - timedelta(days=31)
        )
    decided = await decide(rt, engine, app)
    assert decided.bureau == "fetched"
    assert decided.features["bureau_score"] != 650


async def test_a_no_hit_is_cached_as_no_score(rt: Runtime) -> None:
    engine = fresh_engine(rt)
    app = application(last_name="Thinfile")
    assert (await decide(rt, engine, app)).bureau == "fetched"
    again = await decide(rt, engine, new_checkout(app))
    assert (again.bureau, again.features["bureau_score"]) == ("cached", None)
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 1


async def test_a_slow_bureau_is_given_up_on_at_the_budget(rt: Runtime) -> None:
    engine = fresh_engine(rt, bureau_budget_s=0.05)
    app = application(last_name="Slowbureau")
    started = time.perf_counter()
    decided = await decide(rt, engine, app)
    elapsed_ms = (time.perf_counter() - started) * 1000
    assert decided.bureau == "unavailable"
    assert decided.features["bureau_score"] is None
    assert decided.score is not None and decided.outcome in ("approved", "declined")
    assert 45 <= decided.latency_ms <= 80
    assert elapsed_ms < 150  # the bureau answers after 2 s
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 1
    assert engine.breaker.failures == 1


async def test_a_failing_bureau_opens_the_breaker_and_is_not_called_any_more(
    rt: Runtime, rolled_back: asyncpg.Connection
) -> None:
    now = [0.0]
    breaker = CircuitBreaker(failure_threshold=5, recovery_timeout_s=30, clock=lambda: now[0])
    engine = fresh_engine(rt, bureau=GuardedBureau(credit.engine(rt).bureau.inner, breaker))
    app = application(last_name="Bureaudown")
    at = rt.clock.now()

    async def once() -> CreditDecision:
        # Rolled back: no approval piles up towards the velocity limit.
        savepoint = rolled_back.transaction()
        await savepoint.start()
        try:
            decided = await service.decide(rolled_back, engine, new_checkout(app), at=at)
        finally:
            await savepoint.rollback()
        assert decided.score is not None  # the decision completed without the bureau
        return decided

    seen = [(await once()).bureau for _ in range(8)]
    assert seen == ["unavailable"] * 5 + ["circuit_open"] * 3
    assert breaker.state is BreakerState.OPEN
    # The simulator's own count: the three decisions after the fifth failure never called.
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 5
    assert (breaker.calls, breaker.short_circuits, breaker.opened) == (5, 3, 1)
    assert (await once()).bureau == "circuit_open"
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 5

    # After the recovery timeout one probe goes out; the bureau is still down: open again.
    now[0] += 30
    assert breaker.state is BreakerState.HALF_OPEN
    assert (await once()).bureau == "unavailable"
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 6
    assert (await once()).bureau == "circuit_open"
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 6

    # The next probe is for a consumer the bureau answers: the breaker closes.
    now[0] += 30
    decided = await service.decide(rolled_back, engine, application(), at=at)
    assert decided.bureau == "fetched"
    assert breaker.state is BreakerState.CLOSED
    assert (await once()).bureau == "unavailable"  # asked again
    assert await bureau(rt).sandbox_calls(app.consumer_id) == 7
