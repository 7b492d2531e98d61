"""Secret API keys: issue, authenticate, revoke, suspension."""

from __future__ import annotations

import hashlib

from bnpl.runtime import Runtime
from tests.integration.merchants.helpers import bus_paused
from tests.support import Api, assert_problem, bearer, unique


async def test_a_new_key_authenticates_its_merchant(api: Api, rt: Runtime) -> None:
    merchant = await api.create_merchant()
    await api.settle()
    r = await api.client.post(f"/v1/merchants/{merchant['id']}/api_keys", headers=api.operator)
    assert r.status_code == 201, r.text
    key = r.json()
    assert key["id"].startswith("key_")
    assert key["secret"].startswith("sk_test_")
    assert len(key["secret"]) >= len("sk_test_") + 43  # 32 random bytes, base64url
    assert key["created_at"] and key["livemode"] is False

    r = await api.client.get(f"/v1/merchants/{merchant['id']}", headers=bearer(key["secret"]))
    assert r.status_code == 200, r.text
    assert r.json()["id"] == merchant["id"]

    # Stored only as a SHA-256 hash.
    row = await rt.db.fetchrow("SELECT * FROM merchants.api_keys WHERE id = $1", key["id"])
    assert row is not None
    assert bytes(row["secret_hash"]) == hashlib.sha256(key["secret"].encode()).digest()
    assert all(key["secret"] not in str(v) for v in dict(row).values())

    # The list shows the key, never its secret.
    r = await api.client.get(f"/v1/merchants/{merchant['id']}/api_keys", headers=api.operator)
    assert r.status_code == 200, r.text
    assert [k["id"] for k in r.json()["data"]] == [key["id"]]
    assert key["secret"] not in r.text


async def test_keys_are_only_issued_to_active_merchants(api: Api, rt: Runtime) -> None:
    async with bus_paused(rt):
        pending = await api.create_merchant()
        r = await api.client.post(f"/v1/merchants/{pending['id']}/api_keys", headers=api.operator)
        assert_problem(r, 409, "merchant_not_active")

    rejected = await api.create_merchant(legal_name=f"REJECT Holdings {unique()}")
    await api.settle()
    r = await api.client.post(f"/v1/merchants/{rejected['id']}/api_keys", headers=api.operator)
    assert_problem(r, 409, "merchant_not_active")

    active = await api.active_merchant()
    await api.client.patch(
        f"/v1/merchants/{active.id}", json={"status": "suspended"}, headers=api.operator
    )
    r = await api.client.post(f"/v1/merchants/{active.id}/api_keys", headers=api.operator)
    assert_problem(r, 409, "merchant_not_active")

    r = await api.client.post("/v1/merchants/mer_nope/api_keys", headers=api.operator)
    assert_problem(r, 404, "not_found")


async def test_a_revoked_key_stops_working_at_once(api: Api) -> None:
    merchant = await api.active_merchant()
    r = await api.client.post(f"/v1/merchants/{merchant.id}/api_keys", headers=api.operator)
    second = r.json()
    url = f"/v1/merchants/{merchant.id}"
    assert (await api.client.get(url, headers=merchant.headers)).status_code == 200

    key_id = (await api.client.get(f"{url}/api_keys", headers=api.operator)).json()["data"][0]["id"]
    r = await api.client.delete(f"{url}/api_keys/{key_id}", headers=api.operator)
    assert r.status_code == 204, r.text
    assert r.content == b""
    r = await api.client.get(url, headers=merchant.headers)
    assert_problem(r, 401, "unauthenticated")

    # Other keys of the merchant keep working; revoking again changes nothing.
    assert (await api.client.get(url, headers=bearer(second["secret"]))).status_code == 200
    r = await api.client.delete(f"{url}/api_keys/{key_id}", headers=api.operator)
    assert r.status_code == 204
    keys = (await api.client.get(f"{url}/api_keys", headers=api.operator)).json()["data"]
    assert [k["revoked_at"] is not None for k in keys] == [True, False]

    # Unknown key, or another merchant's key: 404.
    other = await api.active_merchant()
    r = await api.client.delete(f"{url}/api_keys/key_nope", headers=api.operator)
    assert_problem(r, 404, "not_found")
    r = await api.client.delete(f"{url}/api_keys/{second['id']}", headers=other.headers)
    assert_problem(r, 403, "forbidden")
    other_key = (
        await api.client.get(f"/v1/merchants/{other.id}/api_keys", headers=api.operator)
    ).json()["data"][0]["id"]
    r = await api.client.delete(f"{url}/api_keys/{other_key}", headers=api.operator)
    assert_problem(r, 404, "not_found")
    assert (
        await api.client.get(f"/v1/merchants/{other.id}", headers=other.headers)
    ).status_code == 200


async def test_a_suspended_merchant_gets_403_on_every_call_until_reactivated(api: Api) -> None:
    merchant = await api.active_merchant()
    url = f"/v1/merchants/{merchant.id}"
    r = await api.client.patch(url, json={"status": "suspended"}, headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "suspended"

    for method, path in (
        ("GET", url),
        ("GET", "/v1/merchants/mer_nope"),
        ("POST", "/v1/merchants"),
        ("GET", "/v1/does-not-exist"),
        ("GET", "/v1/events"),
    ):
        r = await api.client.request(method, path, headers=merchant.headers, json={})
        assert_problem(r, 403, "merchant_suspended")

    # The operator still sees it.
    r = await api.client.get(url, headers=api.operator)
    assert r.json()["status"] == "suspended"

    r = await api.client.patch(url, json={"status": "active"}, headers=api.operator)
    assert r.status_code == 200 and r.json()["status"] == "active"
    r = await api.client.get(url, headers=merchant.headers)
    assert r.status_code == 200, r.text


async def test_idempotent_key_creation_replays_the_first_answer(api: Api, rt: Runtime) -> None:
    merchant = await api.active_merchant()
    headers = {**api.operator, "Idempotency-Key": unique("key-")}
    url = f"/v1/merchants/{merchant.id}/api_keys"
    first = await api.client.post(url, headers=headers)
    assert first.status_code == 201, first.text
    secret = first.json()["secret"]
    assert secret.startswith("sk_test_")
    replay = await api.client.post(url, headers=headers)
    assert replay.status_code == 201
    assert replay.headers["idempotent-replayed"] == "true"
    assert replay.content == first.content  # the same body, secret included
    # Kept for the replay only encrypted: the secret's bytes are nowhere in the key store.
    stored = await rt.db.fetchval(
        "SELECT count(*) FROM gateway.idempotency_keys "
        "WHERE position($1::bytea IN response_body) > 0",
        secret.encode(),
    )
    assert stored == 0
    keys = (
        await api.client.get(f"/v1/merchants/{merchant.id}/api_keys", headers=api.operator)
    ).json()["data"]
    assert len(keys) == 2  # the helper's key and this one, once
    assert (
        await api.client.get(f"/v1/merchants/{merchant.id}", headers=bearer(secret))
    ).status_code == 200


async def test_keys_are_listed_in_pages(api: Api) -> None:
    merchant = await api.active_merchant()
    url = f"/v1/merchants/{merchant.id}/api_keys"
    for _ in range(2):
        assert (await api.client.post(url, headers=api.operator)).status_code == 201
    everything = (await api.client.get(url, headers=api.operator)).json()
    ids = [k["id"] for k in everything["data"]]
    assert len(ids) == 3 and ids == sorted(ids)
    assert everything["has_more"] is False and everything["next_cursor"] is None

    seen, query = [], "?limit=1"
    while True:
        r = await api.client.get(url + query, headers=api.operator)
        assert r.status_code == 200, r.text
        page = r.json()
        assert len(page["data"]) == 1
        seen.append(page["data"][0]["id"])
        if not page["has_more"]:
            assert page["next_cursor"] is None
            break
        assert page["next_cursor"] == seen[-1]
        query = f"?limit=1&starting_after={page['next_cursor']}"
    assert seen == ids

    r = await api.client.get(f"{url}?limit=2&starting_after={ids[0]}", headers=api.operator)
    assert [k["id"] for k in r.json()["data"]] == ids[1:]
    assert r.json()["has_more"] is False
    for query in ("?limit=0", "?limit=101", "?limit=x", "?starting_after="):
        r = await api.client.get(url + query, headers=api.operator)
        assert_problem(r, 422, "validation_error")


async def test_live_keys_in_production(api: Api, rt: Runtime) -> None:
    from bnpl.merchants import service

    merchant = await api.active_merchant()
    async with rt.db.transaction() as conn:
        key, secret = await service.create_api_key(
            conn, merchant.id, at=rt.clock.now(), livemode=True
        )
    assert secret.startswith("sk_live_") and key.livemode
    r = await api.client.get(f"/v1/merchants/{merchant.id}", headers=bearer(secret))
    assert r.status_code == 200, r.text
