"""The generator's merchants and consumers, bulk-created by `POST /v1/sandbox/seed` (operator,
sandbox only) in chunks, with the credentials the load needs: merchants' secret keys,
consumers' access and refresh tokens, emails and payment method ids."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from bnpl.bench.http import Http

CONSUMERS_PER_CALL = 50_000  # the endpoint's most per call
MERCHANTS_PER_CALL = 10_000
PASSWORD = "bench password, shared"  # every seeded consumer's (logins use it)  # noqa: S105
SEED_TIMEOUT_S = 600.0
CALLS_IN_FLIGHT = 2
GOOD_CARD = "4242424242424242"  # the sandbox gateway's card whose every charge succeeds


@dataclass
class Consumers:
    """Seeded consumers as parallel lists (the generator indexes them by number)."""

    ids: list[str] = field(default_factory=list)
    emails: list[str] = field(default_factory=list)
    payment_methods: list[str] = field(default_factory=list)
    authorization: list[str] = field(default_factory=list)  # "Bearer <access token>"
    refresh_tokens: list[str] = field(default_factory=list)
    issued_at: list[float] = field(default_factory=list)  # time.monotonic() of the token
    risky: list[bool] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Fixtures:
    merchant_ids: list[str]
    merchant_authorization: list[str]  # "Bearer sk_test_..."
    consumers: Consumers
    password: str
    seconds: float


class SeedFailed(RuntimeError):
    pass


async def _seed_call(
    http: Http, operator: str, merchants: int, consumers: int, risky_share: float, card: str
) -> Any:
    body = {
        "merchants": merchants,
        "consumers": consumers,
        "risky": round(consumers * risky_share),
        "password": PASSWORD,
        "card": card,
    }
    status, raw = await http.send(
        "POST", "/v1/sandbox/seed", operator, orjson.dumps(body), timeout_s=SEED_TIMEOUT_S
    )
    if status != 201:
        text = bytes(raw)[:500].decode(errors="replace")
        raise SeedFailed(f"POST /v1/sandbox/seed answered {status}: {text}")
    return orjson.loads(memoryview(raw))


async def seed(
    http: Http,
    admin_token: str,
    merchants: int,
    consumers: int,
    risky_share: float,
    log: Callable[[str], None],
    card: str = GOOD_CARD,
) -> Fixtures:
    """Create `merchants` and `consumers` (a `risky_share` of them the `Risky` persona, each
    with its own token of the test `card`), in calls of at most 50,000 consumers,
    `CALLS_IN_FLIGHT` at a time (one call's Python work in the platform overlaps another's
    COPY in PostgreSQL)."""
    started = time.perf_counter()
    operator = f"Bearer {admin_token}"
    fixtures = Fixtures([], [], Consumers(), PASSWORD, 0.0)
    calls = max(
        math.ceil(consumers / CONSUMERS_PER_CALL), math.ceil(merchants / MERCHANTS_PER_CALL), 1
    )
    chunks = []
    left_merchants, left_consumers = merchants, consumers
    for _ in range(calls):
        m = min(left_merchants, MERCHANTS_PER_CALL)
        c = min(left_consumers, CONSUMERS_PER_CALL)
        left_merchants, left_consumers = left_merchants - m, left_consumers - c
        chunks.append((m, c))
    gate = asyncio.Semaphore(CALLS_IN_FLIGHT)

    async def one(m: int, c: int) -> Any:
        async with gate:
            answer = await _seed_call(http, operator, m, c, risky_share, card)
        if calls > 1:
            log(
                f"  seeded {m:,} merchants, {c:,} consumers ({time.perf_counter() - started:.1f} s)"
            )
        return answer

    answers = await asyncio.gather(*(one(m, c) for m, c in chunks))
    issued = time.monotonic()
    seeded = fixtures.consumers
    for answer in answers:
        for merchant in answer["merchants"]:
            fixtures.merchant_ids.append(merchant["id"])
            fixtures.merchant_authorization.append(f"Bearer {merchant['secret']}")
        for consumer in answer["consumers"]:
            seeded.ids.append(consumer["id"])
            seeded.emails.append(consumer["email"])
            seeded.payment_methods.append(consumer["payment_method_id"])
            seeded.authorization.append(f"Bearer {consumer['access_token']}")
            seeded.refresh_tokens.append(consumer["refresh_token"])
            seeded.issued_at.append(issued)
            seeded.risky.append(consumer["last_name"] == "Risky")
    fixtures.seconds = time.perf_counter() - started
    return fixtures
