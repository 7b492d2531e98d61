"""The feature store on the real engines (PostgreSQL and Redis), and the consumers that keep
it current from `installment.paid` / `installment.late`, redeliveries included."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import redis.asyncio as aioredis

from bnpl import credit
from bnpl.config import Settings
from bnpl.credit import handlers, service
from bnpl.credit.features import FeatureStore, History, PostgresFeatureStore, RedisFeatureStore
from bnpl.kit.ids import new_id
from bnpl.messaging import Event, PostgresBus, publish
from bnpl.runtime import Runtime
from tests.integration.credit.helpers import application
from tests.support import Api, unique

AT = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


@pytest.fixture
async def redis_store(settings: Settings) -> AsyncIterator[RedisFeatureStore]:
    assert settings.redis_url
    client = aioredis.from_url(settings.redis_url)
    store = RedisFeatureStore(client, prefix=f"test:{unique()}:")
    yield store
    await client.aclose()


@pytest.fixture(params=["postgres", "redis"])
async def store(request: pytest.FixtureRequest, redis_store: RedisFeatureStore) -> FeatureStore:
    if request.param == "postgres":
        return PostgresFeatureStore()
    return redis_store


async def test_history_of_an_unknown_consumer_is_empty(rt: Runtime, store: FeatureStore) -> None:
    async with rt.db.connection() as conn:
        history = await store.history(conn, new_id("cus"))
    assert history == History()
    assert history.thin_file
    assert not history.bureau_cached(AT)


async def test_repayments_and_the_bureau_answer_round_trip(
    rt: Runtime, store: FeatureStore
) -> None:
    consumer_id = new_id("cus")
    async with rt.db.transaction() as conn:
        for n, on_time in enumerate([True, True, False]):
            await store.record_repayment(
                conn, consumer_id, on_time=on_time, event_id=f"evt_{consumer_id}_{n}"
            )
        await store.record_bureau(conn, consumer_id, 777, AT)
    async with rt.db.connection() as conn:
        history = await store.history(conn, consumer_id)
    assert (history.on_time_payments, history.late_payments) == (2, 1)
    assert history.thin_file  # 3 repayments < 4
    assert history.bureau_score == 777
    assert history.bureau_checked_at == AT
    assert history.bureau_cached(AT + timedelta(days=30))
    assert not history.bureau_cached(AT + timedelta(days=31))

    async with rt.db.transaction() as conn:
        await store.record_repayment(
            conn, consumer_id, on_time=True, event_id=f"evt_{consumer_id}_3"
        )
        await store.record_bureau(conn, consumer_id, None, AT + timedelta(days=1))  # a no hit
    async with rt.db.connection() as conn:
        history = await store.history(conn, consumer_id)
    assert not history.thin_file
    assert (history.bureau_score, history.bureau_checked_at) == (None, AT + timedelta(days=1))
    assert history.bureau_cached(AT + timedelta(days=1))

    async with rt.db.transaction() as conn:
        await store.forget_bureau(conn, consumer_id)
    async with rt.db.connection() as conn:
        history = await store.history(conn, consumer_id)
    assert (history.on_time_payments, history.late_payments) == (3, 1)
    assert not history.bureau_cached(AT + timedelta(days=1))


async def test_postgres_writes_belong_to_the_callers_transaction(rt: Runtime) -> None:
    store, consumer_id = PostgresFeatureStore(), new_id("cus")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with rt.db.transaction() as conn:
            await store.record_repayment(conn, consumer_id, on_time=True, event_id="evt_x")
            await store.record_bureau(conn, consumer_id, 700, AT)
            raise Rollback
    async with rt.db.connection() as conn:
        assert await store.history(conn, consumer_id) == History()


async def test_redis_counts_a_redelivered_event_once(
    rt: Runtime, redis_store: RedisFeatureStore
) -> None:
    consumer_id, event_id = new_id("cus"), new_id("evt")
    async with rt.db.connection() as conn:
        await redis_store.record_repayment(conn, consumer_id, on_time=True, event_id=event_id)
        await redis_store.record_repayment(conn, consumer_id, on_time=True, event_id=event_id)
        # Concurrent redeliveries too (several workers): the marker and the count are atomic.
        await asyncio.gather(
            *(
                redis_store.record_repayment(conn, consumer_id, on_time=False, event_id=late)
                for late in ["evt_late_a"] * 10 + ["evt_late_b"] * 10
            )
        )
        history = await redis_store.history(conn, consumer_id)
    assert (history.on_time_payments, history.late_payments) == (1, 2)
    # One hash per consumer, markers in its cluster slot (the braces), expiring.
    key = redis_store.key(consumer_id)
    assert key == f"{redis_store.prefix}{{{consumer_id}}}"
    ttl = await redis_store.client.ttl(f"{key}:seen:{event_id}")
    assert 0 < ttl <= 30 * 86400


# -- the consumers --------------------------------------------------------------------------


def paid(consumer_id: str, due: date, paid_at: datetime) -> dict[str, Any]:
    return {
        "type": "installment.paid",
        "consumer_id": consumer_id,
        "data": {
            "plan_id": new_id("pln"),
            "seq": 2,
            "due_date": due.isoformat(),
            "amount_due": 5_000,
            "amount_paid": 5_000,
            "currency": "USD",
            "paid_at": paid_at.isoformat().replace("+00:00", "Z"),
        },
    }


def late(consumer_id: str, due: date) -> dict[str, Any]:
    return {
        "type": "installment.late",
        "consumer_id": consumer_id,
        "data": {"plan_id": new_id("pln"), "seq": 3, "due_date": due.isoformat()},
    }


async def publish_all(rt: Runtime, events: list[dict[str, Any]]) -> list[str]:
    async with rt.db.transaction() as conn:
        return [
            await publish(
                conn,
                e["type"],
                e["data"]["plan_id"],
                e["data"],
                occurred_at=AT,
                merchant_id="mer_test",
                consumer_id=e["consumer_id"],
            )
            for e in events
        ]


def repayment_events(consumer_id: str) -> list[dict[str, Any]]:
    due = date(2026, 11, 20)
    return [
        paid(consumer_id, due, datetime(2026, 11, 19, 9, 0, tzinfo=UTC)),  # early: on time
        paid(consumer_id, due, datetime(2026, 11, 20, 23, 59, tzinfo=UTC)),  # on the due date
        late(consumer_id, due),  # fell late ...
        paid(consumer_id, due, datetime(2026, 11, 23, 9, 0, tzinfo=UTC)),  # ... paid since
    ]


async def test_the_consumers_keep_the_redis_store_current(api: Api, rt: Runtime) -> None:
    engine = credit.engine(rt)
    assert isinstance(engine.features, RedisFeatureStore)
    assert "credit.track_repayments" in rt.bus.subscriptions
    consumer_id = new_id("cus")
    await publish_all(rt, repayment_events(consumer_id))
    await api.settle()
    async with rt.db.connection() as conn:
        history = await engine.features.history(conn, consumer_id)
        assert (history.on_time_payments, history.late_payments) == (2, 1)

        # A redelivery (the bus is at least once) of every event counts nothing more.
        rows = await conn.fetch(
            "SELECT event_id, type, aggregate_id, data, occurred_at, merchant_id, consumer_id, "
            "position FROM messaging.events WHERE consumer_id = $1",
            consumer_id,
        )
        handle = handlers.track_repayments(engine)
        for row in rows:
            await handle(conn, Event.from_row(row))
        history = await engine.features.history(conn, consumer_id)
    assert (history.on_time_payments, history.late_payments) == (2, 1)


async def test_the_consumers_keep_the_postgres_store_current_through_the_inbox(
    rt: Runtime,
) -> None:
    """PostgreSQL: the count commits with the bus's inbox row, so a redelivered event (here:
    a cursor moved back) finds the row and is not handled twice."""
    pg_engine = dataclasses.replace(credit.engine(rt), features=PostgresFeatureStore())
    name = f"credit.track_repayments.test-{unique()}"
    bus = PostgresBus(rt.db)
    bus.subscribe(
        name, ["installment.paid", "installment.late"], handlers.track_repayments(pg_engine)
    )
    consumer_id = new_id("cus")
    await publish_all(rt, repayment_events(consumer_id))
    await bus.drain()

    async def counts() -> tuple[int, int]:
        async with rt.db.connection() as conn:
            history = await pg_engine.features.history(conn, consumer_id)
        return history.on_time_payments, history.late_payments

    assert await counts() == (2, 1)
    rewound = await rt.db.execute(
        "UPDATE messaging.cursors SET position = 0 WHERE consumer = $1", name
    )
    assert rewound == "UPDATE 1"
    await bus.drain()
    assert await counts() == (2, 1)
    handled = await rt.db.fetchval(
        "SELECT count(*) FROM messaging.inbox i JOIN messaging.events e USING (event_id) "
        "WHERE i.consumer = $1 AND e.consumer_id = $2",
        name,
        consumer_id,
    )
    assert handled == 4


async def test_a_decision_reads_the_postgres_store(rt: Runtime) -> None:
    pg_engine = dataclasses.replace(credit.engine(rt), features=PostgresFeatureStore())
    app = application()
    async with rt.db.transaction() as conn:
        for n in range(4):
            await pg_engine.features.record_repayment(
                conn, app.consumer_id, on_time=n < 3, event_id=f"e{n}"
            )
    async with rt.db.transaction() as conn:
        decided = await service.decide(conn, pg_engine, app, at=rt.clock.now())
    assert decided.bureau == "not_needed"
    assert (decided.features["on_time_payments"], decided.features["late_payments"]) == (3, 1)
    assert decided.features["thin_file"] == 0

    thin = application()
    async with rt.db.transaction() as conn:
        await pg_engine.features.record_bureau(conn, thin.consumer_id, 801, rt.clock.now())
    async with rt.db.transaction() as conn:
        decided = await service.decide(conn, pg_engine, thin, at=rt.clock.now())
    assert (decided.bureau, decided.features["bureau_score"]) == ("cached", 801)


async def test_kyc_verification_prefetches_the_bureau_into_the_store(api: Api, rt: Runtime) -> None:
    consumer = await api.consumer()
    async with rt.db.connection() as conn:
        history = await credit.engine(rt).features.history(conn, consumer.id)
    assert history.bureau_score is not None and 740 <= history.bureau_score <= 820
    assert history.bureau_cached(rt.clock.now())
