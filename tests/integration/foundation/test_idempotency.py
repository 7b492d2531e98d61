"""`Idempotency-Key` on POST: replay, conflicts, concurrency, failures and per-principal keys.

The probe endpoint writes one widget row, its audit record and its stored answer in one
transaction (`command()`), so "exactly one row" is what a client must be able to rely on.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import httpx

from bnpl.bootstrap import Roles
from bnpl.config import Settings
from bnpl.gateway.idempotency import request_hash
from bnpl.kit.ids import new_id
from tests.integration.foundation.conftest import Probe, Scratch, running_probe
from tests.integration.foundation.probe import consumer_token, merchant_token
from tests.support import assert_problem, bearer


class Client:
    """One principal of the probe app, posting widgets."""

    def __init__(self, probe: Probe, owner: str, headers: dict[str, str]) -> None:
        self.probe = probe
        self.owner = owner
        self.headers = headers

    @classmethod
    def merchant(cls, probe: Probe) -> Client:
        merchant_id = new_id("mer")
        return cls(probe, merchant_id, bearer(merchant_token(merchant_id)))

    async def post(self, body: dict[str, Any], key: str | None) -> httpx.Response:
        headers = dict(self.headers)
        if key is not None:
            headers["Idempotency-Key"] = key
        return await self.probe.client.post("/probe/widgets", json=body, headers=headers)

    async def rows(self, tag: str | None = None) -> int:
        return await self.probe.widgets(self.owner, tag)

    async def stored_key(self, key: str) -> Any:
        return await self.probe.rt.db.fetchrow(
            "SELECT completed_at, response_status, response_body "
            "FROM gateway.idempotency_keys WHERE owner = $1 AND key = $2",
            self.owner,
            key,
        )


def widget(tag: str | None = None, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": 40000,
        "currency": "USD",
        "kind": "tent",
        "card_number": "4242424242424242",
        "tag": tag or secrets.token_hex(6),
    }
    body.update(overrides)
    return body


def key() -> str:
    return f"key-{secrets.token_hex(8)}"


async def test_same_key_same_body_replays_the_first_answer(probe_app: Probe) -> None:
    client, k, body = Client.merchant(probe_app), key(), widget()
    first = await client.post(body, k)
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    for _ in range(2):
        again = await client.post(body, k)
        assert again.status_code == 201
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"
        assert again.headers["content-type"] == "application/json"
    assert await client.rows() == 1
    # the answer was stored with the change, encrypted
    stored = await client.stored_key(k)
    assert stored["completed_at"] is not None
    assert stored["response_status"] == 201
    sealed = bytes(stored["response_body"])
    assert first.json()["id"].encode() not in sealed
    store = probe_app.app.state.idempotency
    assert store.cipher.open(sealed, aad=store.claim_for(client.owner, k).aad) == first.content
    audit = await probe_app.client.get(
        f"/v1/audit?entity_id={first.json()['id']}", headers=probe_app.operator
    )
    assert len(audit.json()["data"]) == 1


async def test_without_a_key_every_post_acts(probe_app: Probe) -> None:
    client, body = Client.merchant(probe_app), widget()
    for _ in range(2):
        assert (await client.post(body, None)).status_code == 201
    assert await client.rows() == 2


async def test_same_key_different_body_is_409(probe_app: Probe) -> None:
    client, k = Client.merchant(probe_app), key()
    assert (await client.post(widget(amount=100), k)).status_code == 201
    r = await client.post(widget(amount=200), k)
    assert_problem(r, 409, "idempotency_key_reused")
    assert await client.rows() == 1


async def test_concurrent_requests_with_one_key(probe_app: Probe) -> None:
    client, k, body = Client.merchant(probe_app), key(), widget(slow_ms=300)
    answers = await asyncio.gather(client.post(body, k), client.post(body, k))
    by_status = sorted(answers, key=lambda r: r.status_code)
    assert [r.status_code for r in by_status] == [201, 409], [r.text for r in answers]
    assert_problem(by_status[1], 409, "idempotency_request_in_progress")
    assert await client.rows() == 1
    later = await client.post(body, k)
    assert later.status_code == 201
    assert later.headers["idempotent-replayed"] == "true"
    assert later.content == by_status[0].content


async def test_many_concurrent_requests_make_one_row(probe_app: Probe) -> None:
    client, k, body = Client.merchant(probe_app), key(), widget(slow_ms=100)
    answers = await asyncio.gather(*(client.post(body, k) for _ in range(8)))
    statuses = sorted(r.status_code for r in answers)
    assert statuses.count(201) >= 1 and set(statuses) <= {201, 409}, statuses
    assert await client.rows() == 1


async def test_validation_failure_is_replayed_too(probe_app: Probe) -> None:
    client, k, body = Client.merchant(probe_app), key(), widget(amount=-5)
    first = await client.post(body, k)
    assert_problem(first, 422, "validation_error")
    again = await client.post(body, k)
    assert_problem(again, 422, "validation_error")
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == first.content
    assert (await client.stored_key(k))["response_status"] == 422


async def test_a_5xx_answer_releases_the_key(probe_app: Probe) -> None:
    client, k, body = Client.merchant(probe_app), key(), widget(fail="unavailable")
    first = await client.post(body, k)
    assert_problem(first, 503, "unavailable")
    assert await client.stored_key(k) is None
    retry = await client.post(body, k)  # the failure was transient
    assert retry.status_code == 201, retry.text
    assert "idempotent-replayed" not in retry.headers
    assert await client.rows() == 1


async def test_crash_after_the_write_leaves_nothing_and_retry_works(probe_app: Probe) -> None:
    for failure in ("crash_before_respond", "crash_after_respond"):
        client, k, body = Client.merchant(probe_app), key(), widget(fail=failure)
        first = await client.post(body, k)
        assert_problem(first, 500, "internal_error")
        assert await client.rows() == 0, failure  # the business write rolled back
        assert await client.stored_key(k) is None, failure  # and the key was released
        retry = await client.post(body, k)
        assert retry.status_code == 201, (failure, retry.text)
        assert await client.rows() == 1
        assert (await client.post(body, k)).headers["idempotent-replayed"] == "true"


async def test_problem_after_the_answer_was_written_is_stored_not_stuck(
    probe_app: Probe,
) -> None:
    """The handler wrote its answer, then failed with a 4xx: the transaction (change and
    answer) rolled back, so the 4xx is the answer, and the key must not stay locked."""
    client, k, body = Client.merchant(probe_app), key(), widget(fail="conflict_after_respond")
    first = await client.post(body, k)
    assert_problem(first, 409, "probe_conflict")
    assert await client.rows() == 0
    again = await client.post(body, k)
    assert_problem(again, 409, "probe_conflict")
    assert again.headers["idempotent-replayed"] == "true"
    assert await client.rows() == 0


async def test_keys_belong_to_one_principal(probe_app: Probe) -> None:
    k = key()
    merchants = [Client.merchant(probe_app) for _ in range(2)]
    consumer_id = new_id("cus")
    consumer = Client(probe_app, consumer_id, bearer(consumer_token(consumer_id)))
    operator = Client(probe_app, "operator", probe_app.operator)
    for i, client in enumerate([*merchants, consumer, operator]):
        r = await client.post(widget(amount=100 + i), k)
        assert r.status_code == 201, r.text
        assert "idempotent-replayed" not in r.headers
        assert r.json()["owner"] == client.owner
        assert await client.rows() == 1


async def test_key_length_is_1_to_255(probe_app: Probe) -> None:
    client = Client.merchant(probe_app)
    for bad in ("k" * 256, ""):
        r = await client.post(widget(), bad)
        body = assert_problem(r, 400, "validation_error")
        assert body["errors"][0]["field"] == "Idempotency-Key"
    assert await client.rows() == 0
    assert (await client.post(widget(), "k" * 255)).status_code == 201


async def test_invalid_credentials_never_touch_the_key_store(probe_app: Probe) -> None:
    k = key()
    r = await probe_app.client.post(
        "/probe/widgets",
        json=widget(),
        headers={**bearer("sk_test_nobody"), "Idempotency-Key": k},
    )
    assert_problem(r, 401, "unauthenticated")
    stored = await probe_app.rt.db.fetchval(
        "SELECT count(*) FROM gateway.idempotency_keys WHERE key = $1", k
    )
    assert stored == 0


async def test_no_credentials_answer_401_under_a_key_every_time(probe_app: Probe) -> None:
    """Found by schemathesis (missing_required_header): an anonymous request's 401 was stored
    under its key, so the next anonymous request with that key and another body got 409
    `idempotency_key_reused` instead of 401. A 401 is not stored: the key stays free."""
    k = key()
    for amount in (100, 200, 100):
        r = await probe_app.client.post(
            "/probe/widgets", json=widget(amount=amount), headers={"Idempotency-Key": k}
        )
        assert_problem(r, 401, "unauthenticated")
        assert "idempotent-replayed" not in r.headers
    stored = await probe_app.rt.db.fetchval(
        "SELECT count(*) FROM gateway.idempotency_keys WHERE key = $1", k
    )
    assert stored == 0
    # Nor does an answer stored for the key on a public route (keys of clients without
    # credentials are kept per path).
    r = await probe_app.client.post("/v1/consumers", json={}, headers={"Idempotency-Key": k})
    assert_problem(r, 422, "validation_error")
    r = await probe_app.client.post("/probe/widgets", json=widget(), headers={"Idempotency-Key": k})
    assert_problem(r, 401, "unauthenticated")
    r = await probe_app.client.post("/v1/consumers", json={}, headers={"Idempotency-Key": k})
    assert r.headers["idempotent-replayed"] == "true"
    # Nor an answer that came before the route's guard (a body that is not JSON): a route
    # that needs credentials never stores anything for a request without them.
    other, hooks = key(), "/v1/webhook_endpoints"
    r = await probe_app.client.post(
        hooks,
        content=b"{not json",
        headers={"Idempotency-Key": other, "content-type": "application/json"},
    )
    assert_problem(r, 400, "validation_error")
    r = await probe_app.client.post(
        hooks,
        json={"url": "https://x.example", "events": ["*"]},
        headers={"Idempotency-Key": other},
    )
    assert_problem(r, 401, "unauthenticated")


async def test_a_key_expires_after_24_hours(probe_app: Probe) -> None:
    client, k = Client.merchant(probe_app), key()
    first = await client.post(widget(amount=100), k)
    assert first.status_code == 201
    await probe_app.rt.db.execute(
        "UPDATE gateway.idempotency_keys SET created_at = now() - interval '25 hours' "
        "WHERE owner = $1 AND key = $2",
        client.owner,
        k,
    )
    later = await client.post(widget(amount=200), k)  # not "reused": the old key is gone
    assert later.status_code == 201, later.text
    assert "idempotent-replayed" not in later.headers
    assert await client.rows() == 2


async def test_a_claim_abandoned_by_a_crashed_process_is_taken_over(probe_app: Probe) -> None:
    """A process died between claiming the key and finishing: its transaction never
    committed, so after the lock timeout a retry of the same request may run."""
    client, k = Client.merchant(probe_app), key()
    body = json.dumps(widget()).encode()
    headers = {**client.headers, "Idempotency-Key": k, "Content-Type": "application/json"}
    await probe_app.rt.db.execute(
        "INSERT INTO gateway.idempotency_keys (owner, key, request_hash, locked_at) "
        "VALUES ($1, $2, $3, now())",
        client.owner,
        k,
        request_hash("POST", "/probe/widgets", body),
    )
    r = await probe_app.client.post("/probe/widgets", content=body, headers=headers)
    assert_problem(r, 409, "idempotency_request_in_progress")
    timeout = probe_app.settings.idempotency_lock_timeout_s
    await probe_app.rt.db.execute(
        "UPDATE gateway.idempotency_keys SET locked_at = now() - make_interval(secs => $3) "
        "WHERE owner = $1 AND key = $2",
        client.owner,
        k,
        float(timeout + 1),
    )
    other = json.dumps(widget(amount=1)).encode()
    r = await probe_app.client.post("/probe/widgets", content=other, headers=headers)
    assert_problem(r, 409, "idempotency_key_reused")  # only the same request takes over
    r = await probe_app.client.post("/probe/widgets", content=body, headers=headers)
    assert r.status_code == 201, r.text
    assert await client.rows() == 1


async def test_expired_keys_are_purged_by_the_workers(scratch: Scratch, settings: Settings) -> None:
    await scratch.db.execute(
        "INSERT INTO gateway.idempotency_keys (owner, key, request_hash, created_at) "
        "VALUES ('mer_old', 'old', '\\x00', now() - interval '25 hours'), "
        "       ('mer_new', 'new', '\\x00', now() - interval '23 hours')"
    )
    tuned = settings.model_copy(update={"database_url": scratch.dsn, "db_pool_max": 4})
    async with running_probe(tuned, Roles(workers=True)):
        for _ in range(100):
            left = await scratch.db.fetch("SELECT key FROM gateway.idempotency_keys")
            if len(left) == 1:
                break
            await asyncio.sleep(0.02)
    assert [r["key"] for r in left] == ["new"]
