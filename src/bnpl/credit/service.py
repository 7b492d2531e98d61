"""The credit decision (DOMAIN.md, "Credit decision"), made in the checkout's transaction.

The consumer's credit account row is locked first (`FOR UPDATE`): decisions for one consumer
serialize on it, so the velocity count and the exposure check cannot race, and N simultaneous
confirms never push exposure over the limit. Decisions for different consumers never wait on
each other.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
from circuitbreaker import CircuitBreaker, CircuitBreakerError

from bnpl.credit.domain import (
    CreditPolicy,
    DecisionInput,
    DeclineReason,
)
from bnpl.credit.domain import (
    decide as apply_rules,
)
from bnpl.credit.features import FeatureStore, History
from bnpl.credit.model import RiskModel
from bnpl.installments import PlanKind
from bnpl.kit.ids import new_id
from bnpl.providers import CreditBureau, ProviderUnavailable

log = logging.getLogger(__name__)

PAYMENT_METHOD_DECLINED = DeclineReason.PAYMENT_METHOD_DECLINED.value
DEFAULT_CREDIT_LIMIT = 100_000


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
    first_name: str = ""
    last_name: str = ""
    country: str = "US"


@dataclass(frozen=True, slots=True)
class CreditDecision:
    id: str
    consumer_id: str
    checkout_id: str
    outcome: str  # approved | declined
    reasons: tuple[str, ...]
    score: float | None
    model_version: str | None
    features: dict[str, Any]
    bureau: str
    latency_ms: float
    created_at: datetime


@dataclass
class CreditEngine:
    """What a decision needs besides the database: the model, the policy, the feature store
    and the bureau behind a circuit breaker."""

    model: RiskModel
    policy: CreditPolicy
    features: FeatureStore
    bureau: CreditBureau
    bureau_budget_s: float = 0.05
    breaker: CircuitBreaker = field(
        default_factory=lambda: CircuitBreaker(
            failure_threshold=5,
            recovery_timeout=30,
            expected_exception=ProviderUnavailable,
            name="credit-bureau",
        )
    )


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


async def _bureau_score(
    engine: CreditEngine, app: CreditApplication, history: History
) -> tuple[int | None, str]:
    """A thin file's bureau score within the latency budget; never blocks the decision."""
    if not history.thin_file:
        return None, "not_needed"
    if history.bureau_checked:
        return history.bureau_score, "cached"
    try:
        report = await engine.breaker.call_async(
            engine.bureau.report,
            subject_id=app.consumer_id,
            first_name=app.first_name,
            last_name=app.last_name,
            date_of_birth=app.date_of_birth,
            country=app.country,
            timeout=engine.bureau_budget_s,
        )
    except (ProviderUnavailable, CircuitBreakerError) as exc:
        log.warning("deciding without the bureau", extra={"reason": type(exc).__name__})
        return None, "unavailable"
    return report.score if report.found else None, "fetched"


async def decide(
    conn: asyncpg.Connection, engine: CreditEngine, app: CreditApplication, *, at: datetime
) -> CreditDecision:
    """Decide, store the decision, and on approval count the amount against the limit."""
    started = time.perf_counter()
    if app.kyc_status == "verified":
        # The account opens on `consumer.kyc_verified`; don't let a confirm overtake that.
        await conn.execute(
            "INSERT INTO credit.accounts (consumer_id, credit_limit) VALUES ($1, $2) "
            "ON CONFLICT DO NOTHING",
            app.consumer_id,
            DEFAULT_CREDIT_LIMIT,
        )
    row = await conn.fetchrow(
        """
        SELECT a.credit_limit, a.open_principal,
               (SELECT count(*) FROM credit.decisions d
                WHERE d.consumer_id = $1 AND d.outcome = 'approved' AND d.created_at > $2)
                   AS approvals
        FROM credit.accounts a WHERE a.consumer_id = $1
        FOR UPDATE OF a
        """,
        app.consumer_id,
        at - timedelta(hours=24),
    )
    credit_limit = int(row["credit_limit"]) if row else 0
    open_principal = int(row["open_principal"]) if row else 0
    approvals = int(row["approvals"]) if row else 0
    history = await engine.features.history(conn, app.consumer_id)

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
    bureau_status = "not_consulted"

    async def risk() -> float:
        nonlocal bureau_status
        features["bureau_score"], bureau_status = await _bureau_score(engine, app, history)
        return engine.model.predict_default_probability(features)

    # Rules 1-6 are cheap and need no score (a probability of 0 passes rule 7); only when
    # they pass is the model, and for a thin file the bureau, consulted.
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
    outcome = apply_rules(facts, engine.policy)
    score: float | None = None
    if outcome.approved:
        score = await risk()
        outcome = apply_rules(replace(facts, risk_probability=score), engine.policy)
    approved = outcome.approved
    if approved:
        await conn.execute(
            "UPDATE credit.accounts SET open_principal = open_principal + $2, "
            "version = version + 1, updated_at = now() WHERE consumer_id = $1",
            app.consumer_id,
            app.amount,
        )
    decision = CreditDecision(
        id=new_id("dec"),
        consumer_id=app.consumer_id,
        checkout_id=app.checkout_id,
        outcome="approved" if approved else "declined",
        reasons=tuple(outcome.reasons),
        score=score,
        model_version=engine.model.version if score is not None else None,
        features=features,
        bureau=bureau_status,
        latency_ms=round((time.perf_counter() - started) * 1000, 3),
        created_at=at,
    )
    await conn.execute(
        """
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
    if amount:
        await conn.execute(
            "UPDATE credit.accounts SET open_principal = open_principal - $2, "
            "version = version + 1, updated_at = now() WHERE consumer_id = $1",
            consumer_id,
            amount,
        )


async def get_decision(conn: asyncpg.Connection, decision_id: str) -> asyncpg.Record | None:
    row: asyncpg.Record | None = await conn.fetchrow(
        "SELECT * FROM credit.decisions WHERE id = $1", decision_id
    )
    return row
