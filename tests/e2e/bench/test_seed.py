"""`POST /v1/sandbox/seed`: bulk merchants and consumers for load tests, sandbox and operator
only; what it seeds works through the public API like what sign-up, KYC, KYB and login make."""

from __future__ import annotations

import base64
from typing import Any

import httpx
from asgi_lifespan import LifespanManager

from bnpl.app import create_app
from bnpl.bootstrap import Roles
from bnpl.config import Environment, Settings
from tests.support import Api, assert_problem, bearer

PASSWORD = "a seeded password"


async def _seed(api: Api, **body: Any) -> dict[str, Any]:
    r = await api.client.post("/v1/sandbox/seed", json=body, headers=api.operator)
    assert r.status_code == 201, r.text
    answer: dict[str, Any] = r.json()
    return answer


async def test_seeded_consumer_buys_from_a_seeded_merchant(api: Api) -> None:
    seeded = await _seed(api, merchants=2, consumers=3, risky=1, password=PASSWORD)
    assert len(seeded["merchants"]) == 2 and len(seeded["consumers"]) == 3
    assert seeded["token_type"] == "Bearer" and seeded["expires_in"] > 0
    assert [c["last_name"] for c in seeded["consumers"]] == ["Lovelace", "Lovelace", "Risky"]
    merchant, consumer = seeded["merchants"][0], seeded["consumers"][0]
    assert merchant["secret"].startswith("sk_test_") and merchant["id"].startswith("mer_")

    r = await api.client.get(f"/v1/merchants/{merchant['id']}", headers=api.operator)
    assert r.status_code == 200 and r.json()["status"] == "active", r.text
    r = await api.client.get("/v1/me", headers=bearer(consumer["access_token"]))
    assert r.status_code == 200, r.text
    me = r.json()
    assert (me["id"], me["email"], me["kyc_status"]) == (
        consumer["id"],
        consumer["email"],
        "verified",
    )
    assert (me["credit_limit"], me["available_credit"]) == (100_000, 100_000)
    assert me["date_of_birth"] == "1990-12-10" and me["address"]["country"] == "US"
    r = await api.client.get("/v1/me/payment_methods", headers=bearer(consumer["access_token"]))
    assert [pm["id"] for pm in r.json()["data"]] == [consumer["payment_method_id"]], r.text

    r = await api.client.post(
        "/v1/checkouts",
        json={"amount": 40_000, "currency": "USD", "consumer_email": consumer["email"]},
        headers=bearer(merchant["secret"]),
    )
    assert r.status_code == 201, r.text
    checkout_id = r.json()["id"]
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": "pay_in_4", "payment_method_id": consumer["payment_method_id"]},
        headers=bearer(consumer["access_token"]),
    )
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "authorized", r.text
    decision_id = r.json()["decision"]["id"]
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/capture", headers=bearer(merchant["secret"])
    )
    assert r.status_code == 200 and r.json()["status"] == "captured", r.text

    # The bureau's answer was cached by the seed, as the KYC-time prefetch caches it.
    r = await api.client.get(f"/v1/credit/decisions/{decision_id}", headers=api.operator)
    assert r.status_code == 200, r.text
    assert r.json()["bureau"] == "cached", r.json()
    # The gateway simulator knows the seeded card's token: it charged the down payment.
    r = await api.client.get(
        "/v1/sandbox/gateway/charges",
        params={"payment_method_id": consumer["payment_method_id"]},
        headers=api.operator,
    )
    assert [(c["amount"], c["status"]) for c in r.json()["data"]] == [(10_000, "captured")]

    # The seeded session refreshes, and the shared password logs in.
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": consumer["refresh_token"]})
    assert r.status_code == 200, r.text
    r = await api.client.post(
        "/v1/auth/login", json={"email": consumer["email"], "password": PASSWORD}
    )
    assert r.status_code == 200, r.text

    await api.settle()
    r = await api.client.get("/v1/ledger/verify", headers=api.operator)
    assert r.json()["ok"] is True, r.json()
    # One audit record for the whole seed, with what was asked for.
    data = await api.rt.db.fetchval(
        "SELECT data FROM audit.records WHERE action = 'sandbox.seeded' ORDER BY seq DESC LIMIT 1"
    )
    assert data == {"merchants": 2, "consumers": 3, "risky": 1}


async def test_seed_is_for_the_operator_only(api: Api) -> None:
    seeded = await _seed(api, merchants=1, consumers=1)
    r = await api.client.post("/v1/sandbox/seed", json={"consumers": 1})
    assert_problem(r, 401, "unauthenticated")
    for token in (seeded["merchants"][0]["secret"], seeded["consumers"][0]["access_token"]):
        r = await api.client.post("/v1/sandbox/seed", json={"consumers": 1}, headers=bearer(token))
        assert_problem(r, 403, "forbidden")


async def test_seed_refuses_what_it_cannot_do(api: Api) -> None:
    for body, code in [
        ({"consumers": 50_001}, "validation_error"),
        ({"merchants": -1}, "validation_error"),
        ({"consumers": 1, "risky": 2}, "validation_error"),
        ({"consumers": 1, "password": "short"}, "weak_password"),
        ({"consumers": 1, "card": "4242424242424241"}, "invalid_card"),
        ({"consumers": 1, "nope": 1}, "validation_error"),
    ]:
        r = await api.client.post("/v1/sandbox/seed", json=body, headers=api.operator)
        assert_problem(r, 422, code)


async def test_seed_is_not_found_in_production(settings: Settings) -> None:
    production = settings.model_copy(
        update={
            "env": Environment.PRODUCTION,
            "jwt_secret": "j" * 32,
            "encryption_key": base64.b64encode(b"k" * 32).decode(),
        }
    )
    app = create_app(production, Roles(workers=False, migrate=False))
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as client:
            r = await client.post(
                "/v1/sandbox/seed",
                json={"merchants": 1, "consumers": 1},
                headers=bearer(production.admin_token),
            )
    assert_problem(r, 404, "not_found")
