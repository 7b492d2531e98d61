"""Who may call what: 401 `unauthenticated` without (valid) credentials, 403 `forbidden` for
the wrong kind of principal, 403 `merchant_suspended` for a suspended merchant's key."""

from __future__ import annotations

import httpx
import pytest

from bnpl.kit.ids import new_id
from tests.integration.foundation.conftest import Probe
from tests.integration.foundation.probe import consumer_token, merchant_token
from tests.support import assert_problem, bearer


async def test_no_token_is_401_with_a_challenge(probe_app: Probe) -> None:
    r = await probe_app.client.get("/probe/anyone")
    assert_problem(r, 401, "unauthenticated")
    assert r.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer not-a-real-token",
        "Bearer sk_test_unknownkey",
        "Bearer ",
        "Basic dXNlcjpwYXNz",
        "Bearer test-admin-token-but-longer",
        "test-admin-token",  # no scheme
    ],
)
async def test_bad_credentials_are_401(probe_app: Probe, authorization: str) -> None:
    r = await probe_app.client.get("/probe/anyone", headers={"Authorization": authorization})
    assert_problem(r, 401, "unauthenticated")


async def test_operator_token_works(probe_app: Probe, client: httpx.AsyncClient) -> None:
    r = await probe_app.client.get("/probe/operator", headers=probe_app.operator)
    assert r.status_code == 200, r.text
    assert r.json() == {"actor": "operator"}
    # and on the shared app, on a real operator endpoint
    r = await client.get("/v1/audit", headers=probe_app.operator)
    assert r.status_code == 200, r.text


async def test_each_principal_reaches_its_own_endpoints(probe_app: Probe) -> None:
    merchant_id, consumer_id = new_id("mer"), new_id("cus")
    r = await probe_app.client.get("/probe/merchant", headers=bearer(merchant_token(merchant_id)))
    assert r.json() == {"merchant_id": merchant_id}
    r = await probe_app.client.get("/probe/consumer", headers=bearer(consumer_token(consumer_id)))
    assert r.json() == {"consumer_id": consumer_id}


async def test_wrong_kind_of_principal_is_403(probe_app: Probe) -> None:
    merchant = bearer(merchant_token(new_id("mer")))
    consumer = bearer(consumer_token(new_id("cus")))
    cases = [
        ("/probe/merchant", consumer),
        ("/probe/merchant", probe_app.operator),
        ("/probe/consumer", merchant),
        ("/probe/operator", merchant),
        ("/probe/operator", consumer),
        ("/v1/audit", merchant),
        ("/v1/audit/verify", consumer),
    ]
    for path, headers in cases:
        r = await probe_app.client.get(path, headers=headers)
        assert_problem(r, 403, "forbidden")
    r = await probe_app.client.post("/v1/sandbox/clock", json={"advance": "PT1S"}, headers=merchant)
    assert_problem(r, 403, "forbidden")


async def test_operator_endpoints_refuse_anonymous_callers(client: httpx.AsyncClient) -> None:
    for path in ("/v1/audit", "/v1/audit/verify"):
        assert_problem(await client.get(path), 401, "unauthenticated")
    r = await client.post("/v1/sandbox/clock", json={"advance": "PT1S"})
    assert_problem(r, 401, "unauthenticated")


async def test_suspended_merchant_is_refused_everywhere(probe_app: Probe) -> None:
    headers = bearer(merchant_token(new_id("mer"), suspended=True))
    for method, path in (("GET", "/probe/merchant"), ("POST", "/probe/widgets")):
        r = await probe_app.client.request(method, path, headers=headers, json={})
        assert_problem(r, 403, "merchant_suspended")
