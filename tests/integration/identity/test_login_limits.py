"""The failed-login limit (5 per minute per account) holds under concurrency and whatever the
spelling of the email; a successful login never counts against its consumer.

Each request here comes from an address of its own, so that the per-address limit of the
sign-in endpoints (tests/integration/identity/test_sign_in_load.py) never answers for it.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bnpl.identity.domain import normalize_email
from bnpl.identity.service import login_limit_key
from bnpl.runtime import Runtime
from tests.support import Api, ConsumerHandle, assert_problem

KELVIN = "\u212a"  # KELVIN SIGN: PostgreSQL's and Python's lower() both give "k"
DOTTED_I = "\u0130"  # LATIN CAPITAL LETTER I WITH DOT ABOVE: lower() is "i" or "i\u0307"


def random_address() -> str:
    return f"198.18.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"


@pytest.fixture
async def anywhere(app: FastAPI) -> AsyncIterator[Any]:
    """`post(path, json)`: each call from a new client address."""
    clients: list[httpx.AsyncClient] = []

    async def post(path: str, body: dict[str, Any], **kwargs: Any) -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=(random_address(), 40000))
        client = httpx.AsyncClient(transport=transport, base_url="http://bnpl.test")
        clients.append(client)
        return await client.post(path, json=body, **kwargs)

    yield post
    for client in clients:
        await client.aclose()


async def login(anywhere: Any, email: str, password: str, **kwargs: Any) -> httpx.Response:
    response: httpx.Response = await anywhere(
        "/v1/auth/login", {"email": email, "password": password}, **kwargs
    )
    return response


async def test_concurrent_wrong_passwords_are_checked_at_most_five_times(
    api: Api, anywhere: Any
) -> None:
    consumer = await api.consumer(verified=False)
    answers = await asyncio.gather(
        *(login(anywhere, consumer.email, f"wrong password {i}") for i in range(40))
    )
    statuses = [a.status_code for a in answers]
    assert statuses.count(401) <= 5, statuses
    assert statuses.count(401) + statuses.count(429) == 40, statuses
    for a in answers:
        if a.status_code == 429:
            assert_problem(a, 429, "rate_limited")
            assert a.headers["ratelimit-limit"] == "5"
            assert a.headers["ratelimit-remaining"] == "0"
            assert int(a.headers["retry-after"]) >= 1
        else:
            assert_problem(a, 401, "invalid_credentials")


async def test_the_right_password_in_a_burst_of_wrong_ones_gets_no_tokens(
    api: Api, anywhere: Any
) -> None:
    consumer = await api.consumer(verified=False)
    wrong = [
        asyncio.create_task(login(anywhere, consumer.email, f"wrong password {i}"))
        for i in range(29)
    ]
    # The guesses are in (the account's window is full), their hashes still being checked:
    # waited for, not assumed after a fixed pause, which a busy machine can outlast. (That
    # the window fills before any hash is checked is what the 40 concurrent guesses above
    # prove: checked first and counted after, all 40 would be answered 401.)
    rule, key = api.rt.settings.rate_limit_failed_logins, login_limit_key(consumer.id, "")
    async with asyncio.timeout(10):
        while (await api.rt.limiter.check(rule, key)).allowed:  # noqa: ASYNC110 (Redis)
            await asyncio.sleep(0.002)
    right = await login(anywhere, consumer.email, consumer.password)
    assert_problem(right, 429, "rate_limited")
    assert "access_token" not in right.text
    statuses = [(await t).status_code for t in wrong]
    assert statuses.count(401) <= 5, statuses


async def test_successful_logins_are_never_limited(api: Api, anywhere: Any) -> None:
    consumer = await api.consumer(verified=False)
    for _ in range(8):
        r = await login(anywhere, consumer.email, consumer.password)
        assert r.status_code == 200, r.text
    # A success clears the account's failures: four typos, then the password, then five
    # more typos are all checked; only the sixth after the success is refused.
    for _ in range(4):
        assert_problem(await login(anywhere, consumer.email, "typo typo typo"), 401)
    assert (await login(anywhere, consumer.email, consumer.password)).status_code == 200
    for _ in range(5):
        assert_problem(await login(anywhere, consumer.email, "typo typo typo"), 401)
    assert_problem(await login(anywhere, consumer.email, "typo typo typo"), 429, "rate_limited")


def spellings(email: str) -> list[str]:
    """Other spellings of the email: each "i" as "I" or U+0130, each "k" as "K" or U+212A."""
    local, _, domain = email.partition("@")
    options = {"i": ("i", "I", DOTTED_I), "k": ("k", "K", KELVIN)}
    choices = [options.get(c, (c,)) for c in local]
    every = ("".join(parts) + "@" + domain for parts in itertools.product(*choices))
    return [s for s in every if s != email]


async def test_every_spelling_of_an_email_shares_its_account_limit(
    api: Api, rt: Runtime, anywhere: Any
) -> None:
    consumer: ConsumerHandle = await api.consumer(
        verified=False, email=f"kiki.{secrets.token_hex(2)}@example.com"
    )
    # Spellings that PostgreSQL's lower() (the account lookup) folds onto the stored email
    # but Python's does not: found empirically on this database.
    candidates = spellings(consumer.email)
    same_in_postgres = await rt.db.fetch(
        "SELECT s FROM unnest($1::text[]) AS s WHERE lower(s) = lower($2)",
        candidates,
        consumer.email,
    )
    differing = [
        r["s"]
        for r in same_in_postgres
        if normalize_email(r["s"]) != normalize_email(consumer.email)
    ]
    if len(differing) < 6:
        pytest.skip("this database's lower() does not fold U+0130 onto 'i'")
    # Each spelling reaches the account: the right password works with it.
    assert (await login(anywhere, differing[0], consumer.password)).status_code == 200
    for spelling in differing[1:6]:
        assert_problem(await login(anywhere, spelling, "wrong password"), 401)
    # Five failures, each under another spelling, and the account is limited under them all.
    for spelling in (consumer.email, consumer.email.upper(), differing[6 % len(differing)]):
        r = await login(anywhere, spelling, consumer.password)
        assert_problem(r, 429, "rate_limited")


async def test_a_limited_login_does_not_use_up_its_idempotency_key(
    api: Api, rt: Runtime, anywhere: Any
) -> None:
    consumer = await api.consumer(verified=False)
    for _ in range(5):
        assert_problem(await login(anywhere, consumer.email, "wrong password"), 401)
    key = f"limited-{secrets.token_hex(6)}"
    r = await login(anywhere, consumer.email, consumer.password, headers={"Idempotency-Key": key})
    assert_problem(r, 429, "rate_limited")
    # Not stored: retried with the same key once the window has moved, it really runs.
    stored = await rt.db.fetchval(
        "SELECT count(*) FROM gateway.idempotency_keys WHERE key = $1", key
    )
    assert stored == 0
