"""Credit decisioning: rules, risk model, feature store, decisions and credit limits.

Facade:

- `decide(conn, rt, application, at=...) -> CreditDecision`: the decision of DOMAIN.md, stored,
  and on approval the amount counted against the consumer's limit, all in the caller's
  transaction (the account row lock makes the exposure and velocity checks hold under
  concurrency). For a thin file the bureau is asked only within the latency budget
  (`BNPL_BUREAU_BUDGET_MS`), behind a circuit breaker. See docs/credit.md.
- `record_payment_decline(conn, decision_id, ...)`: rule 8, the down payment failed.
- `release_exposure(conn, consumer_id, amount)`: principal repaid, refunded or canceled;
  `release_exposures(conn, {consumer_id: amount})` for many at once.

Hooks this context provides to lower contexts through `rt.hooks` (set by `register`), so that
they need not import credit (context imports point one way: credit -> identity):

- `rt.hooks["credit_summary"](conn, consumer_id) -> tuple[int, int]`:
  `(credit_limit, available_credit)` in minor units; `(0, 0)` before the account opens.
- `rt.hooks["set_credit_limit"](conn, consumer_id, amount: int) -> None`:
  set the limit (opening the account if needed), in the caller's transaction.

Consumers: `credit.open_account` (default limit of 100,000 on `consumer.kyc_verified`),
`credit.prefetch_bureau` (bureau report for the new, thin-file consumer) and
`credit.track_repayments` (the feature store's repayment history).
"""

from __future__ import annotations

from datetime import datetime

import asyncpg
import redis.asyncio as aioredis

from bnpl import identity
from bnpl.config import Settings
from bnpl.credit import bulk as bulk  # sandbox seeding only (POST /v1/sandbox/seed)
from bnpl.credit import handlers
from bnpl.credit.accounts import (
    DEFAULT_CREDIT_LIMIT,
    credit_summary,
    open_account,
    set_credit_limit,
)
from bnpl.credit.domain import CreditPolicy
from bnpl.credit.features import FeatureStore, PostgresFeatureStore, RedisFeatureStore
from bnpl.credit.model import RiskModel
from bnpl.credit.service import (
    PAYMENT_METHOD_DECLINED,
    CreditApplication,
    CreditDecision,
    CreditEngine,
    record_payment_decline,
    release_exposure,
    release_exposures,
)
from bnpl.credit.service import decide as _decide
from bnpl.providers.bureau import CircuitBreaker, GuardedBureau
from bnpl.runtime import Runtime

__all__ = [
    "DEFAULT_CREDIT_LIMIT",
    "PAYMENT_METHOD_DECLINED",
    "CreditApplication",
    "CreditDecision",
    "CreditEngine",
    "FeatureStore",
    "PostgresFeatureStore",
    "RedisFeatureStore",
    "credit_summary",
    "decide",
    "engine",
    "feature_store_kind",
    "open_account",
    "record_payment_decline",
    "register",
    "release_exposure",
    "release_exposures",
    "set_credit_limit",
]


def engine(rt: Runtime) -> CreditEngine:
    """This process's credit engine (model, policy, feature store, bureau breaker)."""
    found: CreditEngine = rt.components["credit"]
    return found


async def decide(
    conn: asyncpg.Connection, rt: Runtime, application: CreditApplication, *, at: datetime
) -> CreditDecision:
    """Decide a checkout's credit in the caller's transaction (see the module docstring)."""
    return await _decide(conn, engine(rt), application, at=at)


def feature_store_kind(settings: Settings) -> str:
    """`redis` or `postgres`: `BNPL_FEATURE_STORE`, or (`auto`) Redis when there is one."""
    if settings.feature_store == "redis" and not settings.redis_url:
        raise ValueError("BNPL_FEATURE_STORE=redis needs BNPL_REDIS_URL")
    if settings.feature_store == "auto":
        return "redis" if settings.redis_url else "postgres"
    return settings.feature_store


def _build_engine(rt: Runtime) -> CreditEngine:
    model = RiskModel.load(rt.settings.risk_model_path)
    cutoff = rt.settings.effective_risk_cutoff
    if cutoff is None:
        cutoff = model.metadata.suggested_cutoff
    store: FeatureStore
    if feature_store_kind(rt.settings) == "redis":
        assert rt.settings.redis_url is not None
        client = aioredis.from_url(rt.settings.redis_url)
        store = RedisFeatureStore(client)
        rt.closers.append(client.aclose)
    else:
        store = PostgresFeatureStore()
    return CreditEngine(
        model=model,
        policy=CreditPolicy(
            risk_cutoff=cutoff, max_approvals_24h=rt.settings.velocity_max_approvals_24h
        ),
        features=store,
        bureau=GuardedBureau(rt.providers.bureau, CircuitBreaker(name="credit-bureau")),
        bureau_budget_s=rt.settings.bureau_budget_ms / 1000,
    )


def register(rt: Runtime) -> None:
    """Build the engine, provide credit's hooks and subscribe its consumers."""
    built = rt.components["credit"] = _build_engine(rt)
    rt.hooks["credit_summary"] = credit_summary
    rt.hooks["set_credit_limit"] = set_credit_limit
    rt.hooks["release_exposure"] = release_exposure
    rt.hooks["release_exposures"] = release_exposures
    rt.bus.subscribe(
        "credit.open_account",
        [identity.CONSUMER_KYC_VERIFIED],
        handlers.open_account_on_verified,
        batch=True,
    )
    rt.bus.subscribe(
        "credit.prefetch_bureau", [identity.CONSUMER_KYC_VERIFIED], handlers.prefetch_bureau(built)
    )
    rt.bus.subscribe(
        "credit.track_repayments",
        ["installment.paid", "installment.late"],
        handlers.track_repayments(built),
        batch=True,
    )
