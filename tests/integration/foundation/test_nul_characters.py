"""A NUL character (which PostgreSQL cannot store in text) is malformed input on every endpoint:
400 in a URL (the gateway refuses it), 422 in a JSON body (the app maps the database's refusal),
never a 500; and nothing is half-written."""

from __future__ import annotations

import pytest

from bnpl.kit.ids import new_id
from tests.integration.foundation.conftest import Probe
from tests.integration.foundation.probe import merchant_token
from tests.support import Api, assert_problem, bearer, unique

NUL = "\u0000"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/v1/audit?entity_id=a%00b", "query"),
        ("/v1/events?starting_after=a%00b", "query"),
        ("/v1/audit?limit=5&actor=%00", "query"),
        ("/v1/merchants/mer_a%00b", "path"),
        ("/v1/consumers/cus_a%00b", "path"),
        ("/v1/merchants/mer_a%00b/api_keys", "path"),
    ],
)
async def test_a_nul_in_the_url_is_400(api: Api, path: str, field: str) -> None:
    r = await api.client.get(path, headers=api.operator)
    body = assert_problem(r, 400, "validation_error")
    assert body["errors"] == [{"field": field, "message": "must not contain NUL characters"}]
    assert r.headers["x-request-id"]


async def test_a_nul_in_a_consumers_path_is_400(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    r = await api.client.delete("/v1/me/payment_methods/pm_a%00b", headers=consumer.headers)
    assert_problem(r, 400, "validation_error")


async def test_a_nul_in_a_login_email_is_422(api: Api) -> None:
    r = await api.client.post(
        "/v1/auth/login", json={"email": f"a{NUL}b@example.com", "password": "whatever123"}
    )
    assert_problem(r, 422, "validation_error")


@pytest.mark.parametrize("field", ["email", "first_name", "last_name"])
async def test_a_nul_in_a_sign_up_is_422_and_creates_nobody(api: Api, field: str) -> None:
    payload = api.consumer_payload()
    payload[field] = payload[field][:2] + NUL + payload[field][2:]
    r = await api.client.post("/v1/consumers", json=payload)
    assert_problem(r, 422, "validation_error")
    # The same sign-up without the NUL goes through: nothing was half-written.
    payload[field] = payload[field].replace(NUL, "")
    r = await api.client.post("/v1/consumers", json=payload)
    assert r.status_code == 201, r.text


async def test_a_nul_in_a_merchant_is_422_and_the_answer_is_kept_for_its_key(api: Api) -> None:
    key = unique("nul-")
    headers = {**api.operator, "Idempotency-Key": key}
    payload = api.merchant_payload(legal_name=f"a{NUL}b")
    r = await api.client.post("/v1/merchants", json=payload, headers=headers)
    assert_problem(r, 422, "validation_error")
    stored = await api.rt.db.fetchrow(
        "SELECT completed_at, response_status FROM gateway.idempotency_keys "
        "WHERE owner = 'operator' AND key = $1",
        key,
    )
    assert stored is not None and stored["completed_at"] is not None
    assert stored["response_status"] == 422
    again = await api.client.post("/v1/merchants", json=payload, headers=headers)
    assert again.status_code == 422
    assert again.headers["idempotent-replayed"] == "true"
    assert again.content == r.content
    created = await api.rt.db.fetchval(
        "SELECT count(*) FROM merchants.merchants WHERE email = $1", payload["email"]
    )
    assert created == 0


async def test_a_nul_after_the_business_write_rolls_it_back(probe_app: Probe) -> None:
    """The NUL in `tag` fails the widget's insert inside `command()`: no row, and the key
    holds the 422 answer (not a claim left locked)."""
    owner = new_id("mer")
    headers = {**bearer(merchant_token(owner)), "Idempotency-Key": unique("nul-")}
    body = {"amount": 100, "currency": "USD", "kind": "tent", "card_number": "4242424242424242"}
    r = await probe_app.client.post("/probe/widgets", json={**body, "tag": NUL}, headers=headers)
    assert_problem(r, 422, "validation_error")
    assert await probe_app.widgets(owner) == 0
    again = await probe_app.client.post(
        "/probe/widgets", json={**body, "tag": NUL}, headers=headers
    )
    assert again.status_code == 422 and again.headers["idempotent-replayed"] == "true"
    # A new key for the corrected request goes through.
    headers["Idempotency-Key"] = unique("nul-")
    r = await probe_app.client.post("/probe/widgets", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert await probe_app.widgets(owner) == 1


async def test_a_nul_in_an_idempotency_key_is_400(probe_app: Probe) -> None:
    owner = new_id("mer")
    headers = {**bearer(merchant_token(owner)), "Idempotency-Key": f"k{NUL}"}
    body = {"amount": 100, "currency": "USD", "kind": "tent", "card_number": "4242424242424242"}
    r = await probe_app.client.post("/probe/widgets", json=body, headers=headers)
    problem = assert_problem(r, 400, "validation_error")
    assert problem["errors"][0]["field"] == "Idempotency-Key"
    assert await probe_app.widgets(owner) == 0
