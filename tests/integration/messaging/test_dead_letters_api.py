"""`GET /v1/dead_letters` and `POST /v1/dead_letters/{consumer}/{event_id}/replay` on the
PostgreSQL bus (the Kafka bus's are in tests/kafka/test_platform.py)."""

from __future__ import annotations

from tests.support import Api


async def test_a_dead_letter_is_listed_and_replayed(iso_api: Api) -> None:
    api = iso_api
    await api.consumer()
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
    r = await api.client.get(
        "/v1/dead_letters", params={"consumer": consumer}, headers=api.operator
    )
    assert r.status_code == 200, r.text
    assert [(d["event_id"], d["event_type"], d["error"]) for d in r.json()["data"]] == [
        (event_id, "consumer.registered", "boom")
    ]
    assert (await api.client.get("/v1/dead_letters")).status_code == 401
    r = await api.client.post(
        f"/v1/dead_letters/{consumer}/{event_id}/replay", headers=api.operator
    )
    assert r.status_code == 202, r.text
    assert await db.fetchval(
        "SELECT count(*) FROM messaging.inbox WHERE consumer = $1 AND event_id = $2",
        consumer,
        event_id,
    )
    r = await api.client.get(
        "/v1/dead_letters", params={"consumer": consumer}, headers=api.operator
    )
    assert r.json()["data"] == []
    r = await api.client.post(
        f"/v1/dead_letters/{consumer}/{event_id}/replay", headers=api.operator
    )
    assert r.status_code == 404, r.text
