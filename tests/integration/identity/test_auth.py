"""Login, refresh-token rotation and reuse detection, logout, failed-login rate limit."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import jwt

from bnpl.identity import crypto
from bnpl.runtime import Runtime
from tests.support import Api, assert_problem, bearer, unique


async def test_login_answers_a_token_pair(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    r = await api.client.post(
        "/v1/auth/login", json={"email": consumer.email.upper(), "password": consumer.password}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 900
    assert body["access_token"] and body["refresh_token"]
    assert r.headers["cache-control"] == "no-store"
    me = await api.client.get("/v1/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == consumer.id


async def test_access_token_claims_use_wall_clock(api: Api, rt: Runtime) -> None:
    consumer = await api.consumer(verified=False)
    claims = jwt.decode(
        consumer.access_token, rt.settings.jwt_key, algorithms=["HS256"], issuer="bnpl"
    )
    assert claims["sub"] == consumer.id
    assert claims["sid"].startswith("ses_")
    assert claims["jti"]
    assert claims["exp"] - claims["iat"] == 900
    assert abs(claims["iat"] - datetime.now(UTC).timestamp()) < 60


async def test_wrong_password_and_unknown_email_answer_the_same(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    wrong = await api.client.post(
        "/v1/auth/login", json={"email": consumer.email, "password": "not the password"}
    )
    unknown = await api.client.post(
        "/v1/auth/login",
        json={"email": f"{unique('nobody')}@example.com", "password": "not the password"},
    )
    a, b = (
        assert_problem(wrong, 401, "invalid_credentials"),
        assert_problem(unknown, 401, "invalid_credentials"),
    )
    assert a == b


async def test_failed_logins_are_limited_per_email(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    attempt = {"email": consumer.email, "password": "wrong password!"}
    for _ in range(5):
        r = await api.client.post("/v1/auth/login", json=attempt)
        assert_problem(r, 401, "invalid_credentials")
        assert "ratelimit-remaining" in r.headers
    r = await api.client.post("/v1/auth/login", json=attempt)
    assert_problem(r, 429, "rate_limited")
    assert int(r.headers["retry-after"]) >= 1
    assert r.headers["ratelimit-limit"] == "5"
    assert r.headers["ratelimit-remaining"] == "0"
    assert "ratelimit-reset" in r.headers
    # Even the right password waits: the email is under attack.
    right = {"email": consumer.email, "password": consumer.password}
    assert_problem(await api.client.post("/v1/auth/login", json=right), 429, "rate_limited")
    # Other emails are not affected.
    other = await api.consumer(verified=False)
    await api.login(other.email, other.password)


async def test_refresh_rotates(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": consumer.refresh_token})
    assert r.status_code == 200, r.text
    pair = r.json()
    assert pair["refresh_token"] != consumer.refresh_token
    assert pair["access_token"] != consumer.access_token
    assert pair["expires_in"] == 900 and pair["token_type"] == "Bearer"
    assert (await api.client.get("/v1/me", headers=bearer(pair["access_token"]))).status_code == 200
    # The new refresh token rotates again.
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert r.status_code == 200, r.text


async def test_refresh_reuse_revokes_the_whole_family(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    first = await api.client.post(
        "/v1/auth/refresh", json={"refresh_token": consumer.refresh_token}
    )
    newer = first.json()
    # The spent token comes back: a thief or a replay. The family dies.
    again = await api.client.post(
        "/v1/auth/refresh", json={"refresh_token": consumer.refresh_token}
    )
    assert_problem(again, 401)
    for access in (consumer.access_token, newer["access_token"]):
        assert_problem(
            await api.client.get("/v1/me", headers=bearer(access)), 401, "unauthenticated"
        )
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": newer["refresh_token"]})
    assert_problem(r, 401)
    # A fresh login starts a new, working family.
    tokens = await api.login(consumer.email, consumer.password)
    assert (
        await api.client.get("/v1/me", headers=bearer(tokens["access_token"]))
    ).status_code == 200


async def test_concurrent_refreshes_with_one_token_never_both_succeed(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    answers = await asyncio.gather(
        *(
            api.client.post("/v1/auth/refresh", json={"refresh_token": consumer.refresh_token})
            for _ in range(3)
        )
    )
    assert sum(a.status_code == 200 for a in answers) <= 1
    assert all(a.status_code in (200, 401) for a in answers)


async def test_unknown_refresh_token(api: Api) -> None:
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": "rt_nonsense"})
    assert_problem(r, 401, "invalid_refresh_token")
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": ""})
    assert r.status_code == 422


async def test_logout_stops_the_session_at_once(api: Api) -> None:
    consumer = await api.consumer(verified=False)
    other_session = await api.login(consumer.email, consumer.password)
    r = await api.client.post("/v1/auth/logout", headers=consumer.headers)
    assert r.status_code == 204, r.text
    assert_problem(await api.client.get("/v1/me", headers=consumer.headers), 401, "unauthenticated")
    r = await api.client.post("/v1/auth/refresh", json={"refresh_token": consumer.refresh_token})
    assert_problem(r, 401)
    # Another session of the same consumer is untouched.
    r = await api.client.get("/v1/me", headers=bearer(other_session["access_token"]))
    assert r.status_code == 200
    # Logout is for consumers only.
    assert_problem(await api.client.post("/v1/auth/logout"), 401, "unauthenticated")
    assert_problem(await api.client.post("/v1/auth/logout", headers=api.operator), 403, "forbidden")


async def test_forged_and_expired_access_tokens_are_refused(api: Api, rt: Runtime) -> None:
    consumer = await api.consumer(verified=False)
    claims = crypto.read_access_token(rt.settings.jwt_key, consumer.access_token)
    assert claims is not None
    forged = crypto.issue_access_token(
        b"not the key" * 3, consumer.id, claims.session_id, datetime.now(UTC), 900
    )
    expired = crypto.issue_access_token(
        rt.settings.jwt_key,
        consumer.id,
        claims.session_id,
        datetime.now(UTC) - timedelta(hours=1),
        900,
    )
    other_consumer = crypto.issue_access_token(
        rt.settings.jwt_key, "cus_someoneelse", claims.session_id, datetime.now(UTC), 900
    )
    for token in (forged, expired, other_consumer, "garbage", consumer.access_token + "x"):
        r = await api.client.get("/v1/me", headers=bearer(token))
        assert_problem(r, 401, "unauthenticated")
