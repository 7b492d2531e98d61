"""The whole platform on Kafka (`BNPL_KAFKA_BOOTSTRAP`), in one process: a purchase driven
through the API with every consumer reading Kafka; `/readyz`, `/metrics` and the dead letters
of the operators' API."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from bnpl.app import create_app
from bnpl.config import Settings
from bnpl.messaging.kafka import KafkaBus, LocalCluster
from tests.conftest import ADMIN_TOKEN
from tests.support import Api, consumer_body, fresh_database


@pytest.fixture(scope="module")
async def kafka_api(
    postgres_server: str, settings: Settings, kafka: LocalCluster
) -> AsyncIterator[Api]:
    async with fresh_database(postgres_server, f"bnpl_kafka_{os.getpid()}") as dsn:
        own = settings.model_copy(
            update={
                "database_url": dsn,
                "kafka_bootstrap": kafka.bootstrap,
                "kafka_topic_prefix": f"p{secrets.token_hex(4)}",
                "kafka_partitions": 2,
                "kafka_replication": kafka.replication,
                "kafka_retry_delay_s": 0.2,
                "kafka_session_timeout_ms": 3000,
            }
        )
        app = create_app(own)
        async with LifespanManager(app, startup_timeout=90, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as c:
                yield Api(c, app.state.runtime, ADMIN_TOKEN)


async def test_a_purchase_on_kafka(kafka_api: Api) -> None:
    api = kafka_api
    assert isinstance(api.rt.bus, KafkaBus)
    r = await api.client.get("/readyz")
    assert r.status_code == 200 and r.json()["checks"]["broker"] == "ok", r.text
    merchant = await api.active_merchant()  # KYB: onboarding's consumer, through Kafka
    consumer = await api.consumer()  # KYC: identity's consumer, through Kafka
    pm = await api.add_card(consumer)
    r = await api.client.post(
        "/v1/checkouts",
        json={"amount": 40003, "currency": "USD", "merchant_reference": "o-1"},
        headers=merchant.headers,
    )
    assert r.status_code == 201, r.text
    r = await api.client.post(
        f"/v1/checkouts/{r.json()['id']}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    await api.settle()
    relayed = await api.rt.db.fetchval(
        "SELECT count(*) FROM messaging.events WHERE position IS NOT NULL"
    )
    assert relayed > 0
    assert not await api.rt.db.fetchval(
        "SELECT count(*) FROM messaging.events WHERE position IS NULL"
    )
    # Every group has committed everything: lag 0 on /metrics, one line per group.
    r = await api.client.get("/metrics", headers=api.operator)
    lines = [ln for ln in r.text.splitlines() if ln.startswith("bnpl_kafka_consumer_lag{")]
    prefix = api.rt.settings.kafka_topic_prefix
    ours = [ln for ln in lines if f'group="{prefix}.' in ln]
    assert len(ours) == len(api.rt.bus.subscriptions), lines
    assert all(ln.endswith(" 0.0") for ln in ours), ours


async def test_dead_letters_are_listed_and_replayed(kafka_api: Api) -> None:
    api = kafka_api
    await api.consumer()
    await api.settle()
    db = api.rt.db
    event_id, consumer = await db.fetchrow(
        "SELECT i.event_id, i.consumer FROM messaging.inbox i "
        "JOIN messaging.events e USING (event_id) WHERE e.type = 'consumer.registered' "
        "ORDER BY i.handled_at DESC LIMIT 1"
    )
    # As the bus leaves an event its consumer gave up on (the inbox row rolled back).
    await db.execute(
        "DELETE FROM messaging.inbox WHERE consumer = $1 AND event_id = $2", consumer, event_id
    )
    await db.execute(
        "INSERT INTO messaging.dead_letters (consumer, event_id, error) VALUES ($1, $2, 'boom')",
        consumer,
        event_id,
    )
    r = await api.client.get("/v1/dead_letters", headers=api.operator)
    assert r.status_code == 200, r.text
    [letter] = [d for d in r.json()["data"] if d["event_id"] == event_id]
    assert letter["consumer"] == consumer and letter["event_type"] == "consumer.registered"
    assert (await api.client.get("/v1/dead_letters")).status_code == 401
    r = await api.client.post(
        f"/v1/dead_letters/{consumer}/{event_id}/replay", headers=api.operator
    )
    assert r.status_code == 202, r.text
    await api.settle()
    assert await db.fetchval(
        "SELECT count(*) FROM messaging.inbox WHERE consumer = $1 AND event_id = $2",
        consumer,
        event_id,
    )
    r = await api.client.get("/v1/dead_letters", headers=api.operator)
    assert event_id not in {d["event_id"] for d in r.json()["data"]}
    r = await api.client.post(
        f"/v1/dead_letters/{consumer}/{event_id}/replay", headers=api.operator
    )
    assert r.status_code == 404, r.text


async def test_the_api_keeps_answering_while_the_broker_is_down(
    kafka_api: Api, kafka: LocalCluster
) -> None:
    api = kafka_api
    kafka.stop_node(1)
    try:
        r = await api.client.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["broker"].startswith("error"), r.text
        signed_up = []
        for _ in range(20):  # sign-ups go on: their events wait in the outbox
            r = await api.client.post("/v1/consumers", json=consumer_body())
            assert r.status_code == 201, r.text
            signed_up.append(r.json()["id"])
        assert await api.rt.db.fetchval(
            "SELECT count(*) FROM messaging.events WHERE position IS NULL "
            "AND type = 'consumer.registered'"
        ) == len(signed_up)
    finally:
        kafka.start_node(1)
    await api.settle()
    for consumer_id in signed_up:  # every KYC ran, once
        r = await api.client.get(f"/v1/consumers/{consumer_id}", headers=api.operator)
        assert r.json()["kyc_status"] == "verified", r.text
    handled = await api.rt.db.fetchval(
        "SELECT count(*) FROM messaging.inbox i JOIN messaging.events e USING (event_id) "
        "WHERE i.consumer = 'identity.verify_kyc' AND e.aggregate_id = ANY($1::text[])",
        signed_up,
    )
    assert handled == len(signed_up)
    assert (await api.client.get("/readyz")).status_code == 200
