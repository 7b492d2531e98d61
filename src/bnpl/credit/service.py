"""The credit decision (DOMAIN.md, "Credit decision"), made in the checkout's transaction.

One decision, in order:

1. lock the consumer's credit account row (`FOR UPDATE`; opened with the default limit if a
   confirm overtook `credit.open_account`). Decisions for one consumer serialize on it, so
   neither the velocity count nor the exposure check can race: N simultaneous confirms never
   push exposure over the limit nor approvals over the velocity limit. Decisions for
   different consumers never wait on each other;
2. after the lock is granted, count the approvals of the last 24 hours (with a snapshot taken
   then, so it sees the decisions committed by whoever held the lock before) and read the
   feature store. Steps 1 and 2 are one round trip (`credit.decision_inputs`, migration
   0003); a Redis feature store is read concurrently with it;
3. rules 1-6 (`domain.py`), which need no score; the first failing rule declines;
4. only if they pass: for a thin file, the bureau (cached answer, or a call bounded by what
   is left of the latency budget, behind a circuit breaker; a slow or failing bureau means
   deciding without it, recorded as `bureau: "unavailable"` or `"circuit_open"`);
5. the risk model (in-process, no I/O), for every decision: a decline by rules 1-6 is scored
   too (without the bureau, `bureau: "not_consulted"`), and keeps its rule as the only
   reason; rule 7 decides only what rules 1-6 passed;
6. one statement stores the decision (outcome, reasons, score, model version, features,
   bureau status, latency) and, on approval, counts the amount against the limit.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from typing import Any, Final

import asyncpg
from prometheus_client import Counter, Histogram

from bnpl import identity
from bnpl.credit.accounts import DEFAULT_CREDIT_LIMIT
from bnpl.credit.domain import CreditPolicy, DecisionInput, DeclineReason, first_failing_rule
from bnpl.credit.domain import decide as apply_rules
from bnpl.credit.features import FeatureStore, History, PostgresFeatureStore
from bnpl.credit.model import RiskModel
from bnpl.installments import PlanKind
from bnpl.kit.ids import new_id
from bnpl.providers import ProviderUnavailable
from bnpl.providers.bureau import CircuitBreaker, CircuitOpen, GuardedBureau

log = logging.getLogger(__name__)

PAYMENT_METHOD_DECLINED: Final = DeclineReason.PAYMENT_METHOD_DECLINED.value

# What a decision did about the bureau (`credit.decisions.bureau`).
BUREAU_NOT_CONSULTED: Final = "not_consulted"  # a rule 1-6 declined before it mattered
BUREAU_NOT_NEEDED: Final = "not_needed"  # not a thin file
BUREAU_CACHED: Final = "cached"  # the feature store had the bureau's answer
BUREAU_FETCHED: Final = "fetched"  # asked now, within the budget (and cached)
BUREAU_UNAVAILABLE: Final = "unavailable"  # failed or too slow: decided without it
BUREAU_CIRCUIT_OPEN: Final = "circuit_open"  # not even asked: the breaker is open

DECISIONS = Counter("bnpl_credit_decisions_total", "Credit decisions", ["outcome", "bureau"])
DECISION_LATENCY = Histogram(
    "bnpl_credit_decision_seconds",
    "Credit decision latency (lock, features, rules, bureau, model)",
    buckets=(0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25),
)


@dataclass(frozen=True, slots=True)
class CreditApplication:
    consumer_id: str
    checkout_id: str
    merchant_id: str
    amount: int
    currency: str
    plan: str
    amount_range: tuple[int, int] | None  # the plan's range as narrowed by the merchant
    merchant_category: str | None  # the merchant's MCC
    kyc_status: str
    date_of_birth: date
    consumer_since: datetime
    has_delinquent_plan: bool
    # For the bureau; left empty, they are read from identity when the bureau is called.
    first_name: str = ""
    last_name: str = ""
    country: str = ""


@dataclass(frozen=True, slots=True)
class CreditDecision:
    id: str
    consumer_id: str
    checkout_id: str
    outcome: str  # approved | declined
    reasons: tuple[str, ...]
    score: float
    model_version: str
    features: dict[str, Any]
    bureau: str
    latency_ms: float
    created_at: datetime


@dataclass
class CreditEngine:
    """What a decision needs besides the database: the model, the policy, the feature store
    and the bureau behind its circuit breaker, with the decision's latency budget."""

    model: RiskModel
    policy: CreditPolicy
    features: FeatureStore
    bureau: GuardedBureau
    bureau_budget_s: float = 0.05

    @property
    def breaker(self) -> CircuitBreaker:
        return self.bureau.breaker


# Merchant category codes (ISO 18245) grouped as the model's `merchant_category` feature.
_MCC_GROUPS: tuple[tuple[range, int], ...] = (
    (range(5600, 5700), 1),  # fashion
    (range(5732, 5736), 2),  # electronics
    (range(5045, 5046), 2),
    (range(3000, 3300), 4),  # airlines
    (range(4511, 4512), 4),
    (range(4722, 4723), 4),  # travel agencies
    (range(7011, 7012), 4),  # hotels
    (range(5200, 5300), 3),  # home
    (range(5712, 5723), 3),
    (range(5912, 5913), 5),  # health and beauty
    (range(5977, 5978), 5),
    (range(7230, 7231), 5),
    (range(5940, 5942), 6),  # sports and outdoor
    (range(5815, 5819), 7),  # digital goods
)


def merchant_category_code(mcc: str | None) -> int:
    if mcc is None or not mcc.isdigit():
        return 0
    value = int(mcc)
    return next((group for codes, group in _MCC_GROUPS if value in codes), 0)


@dataclass(frozen=True, slots=True)
class _Inputs:
    credit_limit: int
    open_principal: int
    approvals_24h: int
    history: History | None  # the PostgreSQL feature store's row, read in the same trip


async def _read_inputs(
    conn: asyncpg.Connection, app: CreditApplication, at: datetime, *, with_features: bool
) -> _Inputs:
    """Lock the account (opening it for a verified consumer if a confirm overtook
    `credit.open_account`), count the approvals of the last 24 hours after the lock is
    granted, and read the PostgreSQL feature store: one round trip (migration 0003)."""
    row = await conn.fetchrow(
        "SELECT * FROM credit.decision_inputs($1, $2, $3)",
        app.consumer_id,
        at - timedelta(hours=24),
        DEFAULT_CREDIT_LIMIT if app.kyc_status == "verified" else None,
    )
    assert row is not None
    history = None
    if with_features:
        history = History(
            row["on_time_payments"],
            row["late_payments"],
            row["bureau_score"],
            row["bureau_checked_at"],
        )
    return _Inputs(
        int(row["credit_limit"]), int(row["open_principal"]), int(row["approvals_24h"]), history
    )


async def _consult_bureau(
    conn: asyncpg.Connection,
    engine: CreditEngine,
    app: CreditApplication,
    history: History,
    *,
    at: datetime,
    deadline: float,
) -> tuple[int | None, str]:
    """A thin file's bureau score, and what was done to get it; never past `deadline`."""
    if not history.thin_file:
        return None, BUREAU_NOT_NEEDED
    if history.bureau_cached(at):
        return history.bureau_score, BUREAU_CACHED
    first_name, last_name, country = app.first_name, app.last_name, app.country
    if not last_name:
        facts = await identity.consumer_facts(conn, app.consumer_id)
        if facts is not None:
            first_name, last_name, country = facts.first_name, facts.last_name, facts.country
    remaining = deadline - time.perf_counter()
    if remaining <= 0:
        log.warning("no budget left for the bureau", extra={"consumer_id": app.consumer_id})
        return None, BUREAU_UNAVAILABLE
    try:
        report = await engine.bureau.report(
            subject_id=app.consumer_id,
            first_name=first_name,
            last_name=last_name,
            date_of_birth=app.date_of_birth,
            country=country or "US",
            timeout=remaining,
        )
    except CircuitOpen:
        return None, BUREAU_CIRCUIT_OPEN
    except ProviderUnavailable as exc:
        log.warning(
            "deciding without the bureau",
            extra={"consumer_id": app.consumer_id, "reason": str(exc)},
        )
        return None, BUREAU_UNAVAILABLE
    score = report.score if report.found else None
    await engine.features.record_bureau(conn, app.consumer_id, score, at)
    return score, BUREAU_FETCHED


async def decide(
    conn: asyncpg.Connection, engine: CreditEngine, app: CreditApplication, *, at: datetime
) -> CreditDecision:
    """Decide, store the decision, and on approval count the amount against the limit."""
    started = time.perf_counter()
    if isinstance(engine.features, PostgresFeatureStore):
        inputs = await _read_inputs(conn, app, at, with_features=True)
        assert inputs.history is not None
        history = inputs.history
    else:
        # The store is elsewhere (Redis): ask it while the database takes the lock.
        inputs, history = await asyncio.gather(
            _read_inputs(conn, app, at, with_features=False),
            engine.features.history(conn, app.consumer_id),
        )
    credit_limit, open_principal = inputs.credit_limit, inputs.open_principal
    approvals = inputs.approvals_24h

    kind = PlanKind(app.plan)
    merchant_min, merchant_max = app.amount_range or (kind.min_amount, kind.max_amount)
    features: dict[str, Any] = {
        "account_age_days": max(0, (at - app.consumer_since).days),
        "on_time_payments": history.on_time_payments,
        "late_payments": history.late_payments,
        "outstanding_balance": open_principal,
        "credit_limit": credit_limit,
        "utilisation": (open_principal / credit_limit) if credit_limit else 1.0,
        "approved_checkouts_24h": approvals,
        "amount": app.amount,
        "merchant_category": merchant_category_code(app.merchant_category),
        "thin_file": int(history.thin_file),
        "bureau_score": None,
    }
    # Rules 1-6 need no score; only when they pass is the bureau consulted (for a thin file).
    # The model scores every decision (a rule 1-6 decline without the bureau's score).
    facts = DecisionInput(
        kyc_status=app.kyc_status,
        date_of_birth=app.date_of_birth,
        decision_date=at.date(),
        amount=app.amount,
        plan_min_amount=kind.min_amount,
        plan_max_amount=kind.max_amount,
        merchant_min_amount=merchant_min,
        merchant_max_amount=merchant_max,
        has_delinquent_plan=app.has_delinquent_plan,
        approvals_24h=approvals,
        open_principal=open_principal,
        credit_limit=credit_limit,
        risk_probability=0.0,
    )
    bureau = BUREAU_NOT_CONSULTED
    if first_failing_rule(facts, engine.policy) is None:
        features["bureau_score"], bureau = await _consult_bureau(
            conn, engine, app, history, at=at, deadline=started + engine.bureau_budget_s
        )
    score = engine.model.predict_default_probability(features)
    outcome = apply_rules(replace(facts, risk_probability=score), engine.policy)

    elapsed = time.perf_counter() - started
    decision = CreditDecision(
        id=new_id("dec"),
        consumer_id=app.consumer_id,
        checkout_id=app.checkout_id,
        outcome="approved" if outcome.approved else "declined",
        reasons=tuple(outcome.reasons),
        score=score,
        model_version=engine.model.version,
        features=features,
        bureau=bureau,
        latency_ms=round(elapsed * 1000, 3),
        created_at=at,
    )
    await conn.execute(
        """
        WITH exposure AS (
            UPDATE credit.accounts
            SET open_principal = open_principal + $6, version = version + 1, updated_at = now()
            WHERE consumer_id = $2 AND $4 = 'approved'
        )
        INSERT INTO credit.decisions
            (id, consumer_id, checkout_id, outcome, reasons, amount, currency, plan, score,
             model_version, features, bureau, latency_ms, created_at)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
        """,
        decision.id,
        decision.consumer_id,
        decision.checkout_id,
        decision.outcome,
        list(decision.reasons),
        app.amount,
        app.currency,
        app.plan,
        decision.score,
        decision.model_version,
        decision.features,
        decision.bureau,
        decision.latency_ms,
        at,
    )
    DECISION_LATENCY.observe(elapsed)
    DECISIONS.labels(decision.outcome, bureau).inc()
    return decision


async def record_payment_decline(
    conn: asyncpg.Connection, decision_id: str, *, consumer_id: str, amount: int, at: datetime
) -> None:
    """The down payment failed: the decision becomes `payment_method_declined` (rule 8) and
    the amount it counted against the limit is released."""
    await conn.execute(
        "UPDATE credit.decisions SET outcome = 'declined', reasons = $2 WHERE id = $1",
        decision_id,
        [PAYMENT_METHOD_DECLINED],
    )
    await release_exposure(conn, consumer_id, amount)


async def release_exposure(conn: asyncpg.Connection, consumer_id: str, amount: int) -> None:
    """Principal repaid, refunded or canceled no longer counts against the limit."""
    await release_exposures(conn, {consumer_id: amount})


async def release_exposures(conn: asyncpg.Connection, amounts: Mapping[str, int]) -> None:
    """`release_exposure` for several consumers in one statement (a batch job's).

    The account rows are updated in consumer order, so two batches never deadlock.
    """
    released = sorted((c, a) for c, a in amounts.items() if a)
    if not released:
        return
    await conn.execute(
        """
        UPDATE credit.accounts a
        SET open_principal = a.open_principal - r.amount, version = a.version + 1,
            updated_at = now()
        FROM (
            SELECT r.consumer_id, r.amount FROM unnest($1::text[], $2::bigint[])
                AS r (consumer_id, amount)
            JOIN credit.accounts locked USING (consumer_id)
            WHERE locked.consumer_id = ANY($1::text[])
            ORDER BY r.consumer_id
            FOR UPDATE OF locked
        ) r
        WHERE a.consumer_id = r.consumer_id AND a.consumer_id = ANY($1::text[])
        """,
        [c for c, _ in released],
        [a for _, a in released],
    )


async def get_decision(conn: asyncpg.Connection, decision_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT id, consumer_id, checkout_id, outcome, reasons, amount, currency, plan, score, "
        "model_version, features, bureau, latency_ms, created_at "
        "FROM credit.decisions WHERE id = $1",
        decision_id,
    )
    return row
