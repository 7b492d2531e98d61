"""`GET /v1/events`: merchants see their own public events, operators all; internal ones never."""

from tests.support import Api, assert_problem


async def test_merchant_sees_only_its_own_public_events(api: Api) -> None:
    mine = await api.active_merchant()
    other = await api.active_merchant()
    r = await api.client.post(
        "/v1/checkouts", json={"amount": 5_000, "currency": "USD"}, headers=mine.headers
    )
    checkout_id = r.json()["id"]
    await api.client.post(
        "/v1/checkouts", json={"amount": 6_000, "currency": "USD"}, headers=other.headers
    )

    r = await api.client.get(
        "/v1/events", params={"type": "checkout.created", "limit": 100}, headers=mine.headers
    )
    assert r.status_code == 200, r.text
    events = r.json()["data"]
    assert [e["data"]["id"] for e in events] == [checkout_id]
    assert events[0]["id"].startswith("evt_") and events[0]["type"] == "checkout.created"

    r = await api.client.get("/v1/events", params={"limit": 100}, headers=mine.headers)
    types = {e["type"] for e in r.json()["data"]}
    assert "merchant.activated" in types
    assert not types & {"merchant.applied", "onboarding.business_verified"}  # internal

    r = await api.client.get(f"/v1/events/{events[0]['id']}", headers=other.headers)
    assert_problem(r, 404)
    r = await api.client.get(f"/v1/events/{events[0]['id']}", headers=api.operator)
    assert r.status_code == 200 and r.json()["data"]["amount"] == 5_000


async def test_pagination_and_principals(api: Api) -> None:
    merchant = await api.active_merchant()
    for amount in (5_000, 5_001, 5_002):
        await api.client.post(
            "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=merchant.headers
        )
    first = await api.client.get(
        "/v1/events", params={"type": "checkout.created", "limit": 2}, headers=merchant.headers
    )
    body = first.json()
    assert body["has_more"] is True and len(body["data"]) == 2
    rest = await api.client.get(
        "/v1/events",
        params={"type": "checkout.created", "starting_after": body["next_cursor"]},
        headers=merchant.headers,
    )
    amounts = [e["data"]["amount"] for e in body["data"] + rest.json()["data"]]
    assert amounts == [5_000, 5_001, 5_002]

    consumer = await api.consumer(verified=False)
    assert_problem(await api.client.get("/v1/events", headers=consumer.headers), 403, "forbidden")
    assert_problem(await api.client.get("/v1/events"), 401, "unauthenticated")


async def test_one_aggregates_events_for_its_merchant_and_the_operator(api: Api) -> None:
    mine = await api.active_merchant()
    other = await api.active_merchant()
    ids = []
    for amount in (5_000, 5_001):
        r = await api.client.post(
            "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=mine.headers
        )
        ids.append(r.json()["id"])
    for who in (mine.headers, api.operator):
        r = await api.client.get("/v1/events", params={"aggregate_id": ids[0]}, headers=who)
        assert r.status_code == 200, r.text
        assert [(e["type"], e["data"]["id"]) for e in r.json()["data"]] == [
            ("checkout.created", ids[0])
        ]
    r = await api.client.get("/v1/events", params={"aggregate_id": ids[0]}, headers=other.headers)
    assert r.json()["data"] == []  # another merchant's aggregate: nothing, not an error
    r = await api.client.get("/v1/events", params={"aggregate_id": "x" * 101}, headers=api.operator)
    assert_problem(r, 422)
