"""Sandbox seeding: credit accounts and cached bureau answers for many new consumers at once.

Only for `POST /v1/sandbox/seed` (never in production). What `credit.open_account` and
`credit.prefetch_bureau` leave for a consumer whose KYC was just verified: an account with the
default limit and, in the feature store, the bureau's answer as of business time `at` (so a
seeded consumer's first checkout finds it cached, as a signed-up consumer's does). Written by
COPY in PostgreSQL, by one pipeline per batch in Redis.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Final

import asyncpg

from bnpl.credit.accounts import DEFAULT_CREDIT_LIMIT
from bnpl.credit.features import FeatureStore, PostgresFeatureStore, RedisFeatureStore
from bnpl.providers.bureau import BureauReport

_REDIS_BATCH: Final = 10_000


async def seed_accounts(
    conn: asyncpg.Connection,
    store: FeatureStore,
    reports: Mapping[str, BureauReport | None],
    *,
    at: datetime,
    credit_limit: int = DEFAULT_CREDIT_LIMIT,
) -> None:
    """Open an account (`credit_limit`) for each consumer of `reports` and cache its bureau
    report (None: the bureau did not answer; nothing is cached and the first decision asks),
    in the caller's transaction (Redis: at once)."""
    await conn.copy_records_to_table(
        "accounts",
        schema_name="credit",
        columns=["consumer_id", "credit_limit"],
        records=[(consumer_id, credit_limit) for consumer_id in reports],
    )
    answered = [
        (consumer_id, report.score if report.found else None)
        for consumer_id, report in reports.items()
        if report is not None
    ]
    if isinstance(store, PostgresFeatureStore):
        await conn.copy_records_to_table(
            "features",
            schema_name="credit",
            columns=["consumer_id", "bureau_score", "bureau_checked_at"],
            records=[(consumer_id, score, at) for consumer_id, score in answered],
        )
    elif isinstance(store, RedisFeatureStore):
        checked_at = at.isoformat()
        for start in range(0, len(answered), _REDIS_BATCH):
            pipe = store.client.pipeline(transaction=False)
            for consumer_id, score in answered[start : start + _REDIS_BATCH]:
                pipe.hset(
                    store.key(consumer_id),
                    mapping={
                        "bureau_score": "" if score is None else str(score),
                        "bureau_checked_at": checked_at,
                    },
                )
            await pipe.execute()
    else:
        for consumer_id, score in answered:
            await store.record_bureau(conn, consumer_id, score, at)
