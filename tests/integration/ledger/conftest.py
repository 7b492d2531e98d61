"""Fixtures of the ledger's integration tests.

The whole suite shares one database, and the final `GET /v1/ledger/verify` must stay ok, so
what these tests commit must not move any balance other contexts check against their data:
`scratch` records every entry a test commits and, when the test ends, posts one balanced
reversing entry per currency, so every account returns to where it was.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bnpl import ledger
from bnpl.gateway.middleware import GatewayMiddleware
from bnpl.gateway.principals import Consumer, Merchant
from bnpl.runtime import Runtime

# The ledger's tests post in a currency the other contexts' tests hardly use, so the balance
# deltas they assert are not disturbed by other contexts' background work.
CURRENCY = "AUD"
TEST_KIND = "ledger_test"


class Scratch:
    """Posts test entries and remembers their net effect, to reverse it at the end."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.net: dict[tuple[str, ledger.Account], int] = defaultdict(int)

    def record(self, currency: str, lines: Sequence[ledger.Line]) -> None:
        """Count lines whose entry committed."""
        for line in lines:
            sign = 1 if line.side is ledger.Side.DEBIT else -1
            self.net[currency, line.account] += sign * line.amount

    async def post(
        self, lines: Sequence[ledger.Line], *, currency: str = CURRENCY, **kwargs: Any
    ) -> str:
        """Post one entry in a transaction of its own (committed) and record it."""
        kwargs.setdefault("kind", f"{TEST_KIND}.entry")
        kwargs.setdefault("reference_id", "ref_ledger_test")
        async with self.rt.db.transaction() as conn:
            entry_id = await ledger.post(
                conn, currency=currency, lines=lines, at=self.rt.clock.now(), **kwargs
            )
        self.record(currency, lines)
        return entry_id

    async def reverse(self) -> None:
        for currency in sorted({c for c, _ in self.net}):
            lines = []
            for (c, account), net in sorted(self.net.items()):
                if c != currency or net == 0:
                    continue
                side = ledger.Side.CREDIT if net > 0 else ledger.Side.DEBIT
                lines.append(ledger.Line(account, side, abs(net)))
            if lines:
                async with self.rt.db.transaction() as conn:
                    await ledger.post(
                        conn,
                        kind=f"{TEST_KIND}.reversal",
                        reference_id="ref_ledger_test",
                        currency=currency,
                        lines=lines,
                        at=self.rt.clock.now(),
                    )
        self.net.clear()


@pytest.fixture
async def scratch(rt: Runtime) -> AsyncIterator[Scratch]:
    pad = Scratch(rt)
    try:
        yield pad
    finally:
        await pad.reverse()


MERCHANT_TOKEN = "sk_test_ledger_fake_merchant"
CONSUMER_TOKEN = "ledger-fake-consumer-access-token"


def _gateway(app: FastAPI) -> GatewayMiddleware:
    layer: Any = app.middleware_stack
    while layer is not None and not isinstance(layer, GatewayMiddleware):
        layer = getattr(layer, "app", None)
    assert layer is not None, "the gateway middleware is not in the stack"
    return layer


@pytest.fixture
async def principal_tokens(app: FastAPI, client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Make `MERCHANT_TOKEN` and `CONSUMER_TOKEN` resolve to a merchant and a consumer.

    The ledger's endpoints only care about the kind of principal, so the gateway's resolvers
    are wrapped (every other credential still goes to the real ones) instead of onboarding a
    merchant and a consumer through other contexts.
    """
    await client.get("/healthz")  # builds the middleware stack
    resolvers = _gateway(app).resolvers
    real_key, real_token = resolvers.merchant_key, resolvers.access_token

    async def merchant_key(secret: str) -> Merchant | None:
        if secret == MERCHANT_TOKEN:
            return Merchant("mer_ledgertest", "key_ledgertest")
        return await real_key(secret) if real_key is not None else None

    async def access_token(token: str) -> Consumer | None:
        if token == CONSUMER_TOKEN:
            return Consumer("cus_ledgertest", "ses_ledgertest")
        return await real_token(token) if real_token is not None else None

    resolvers.merchant_key, resolvers.access_token = merchant_key, access_token
    try:
        yield
    finally:
        resolvers.merchant_key, resolvers.access_token = real_key, real_token


@pytest.fixture
def no_extra_checks() -> Iterator[None]:
    """Fail loudly if a test leaves a check of its own registered."""
    before = set(ledger.registered_checks())
    yield
    assert set(ledger.registered_checks()) == before
