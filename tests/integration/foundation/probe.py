"""A test-only router and test principals, mounted on a second app instance of the platform.

The foundation has no business endpoint of its own, so these stand in for one: a `POST` that
changes state through `command()` (a row in a test-only schema, its audit record and its
idempotent answer in one transaction), with switches to make it slow or make it fail at the
interesting moments, and `GET`s guarded by each kind of principal.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from bnpl.gateway import (
    ConsumerP,
    CredentialResolvers,
    MerchantP,
    OperatorP,
    command,
)
from bnpl.gateway.auth import AnyP
from bnpl.gateway.middleware import GatewayMiddleware
from bnpl.gateway.principals import Consumer, Merchant
from bnpl.kit.errors import ProblemError, conflict
from bnpl.kit.ids import new_id
from bnpl.kit.money import MAX_AMOUNT

SCHEMA = "foundation_probe"
MERCHANT_PREFIX = "sk_test_probe_"
SUSPENDED_PREFIX = "sk_test_probesuspended_"
CONSUMER_PREFIX = "probe-consumer."

DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.widgets (
    id text PRIMARY KEY,
    owner text NOT NULL,
    amount bigint NOT NULL,
    currency text NOT NULL,
    kind text NOT NULL,
    tag text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
"""


def merchant_token(merchant_id: str, *, suspended: bool = False) -> str:
    return (SUSPENDED_PREFIX if suspended else MERCHANT_PREFIX) + merchant_id


def consumer_token(consumer_id: str) -> str:
    return CONSUMER_PREFIX + consumer_id


def install_resolvers(app: FastAPI) -> None:
    """Resolve the probe's test credentials; anything else goes to the real resolvers."""
    found = [m for m in app.user_middleware if m.cls is GatewayMiddleware]
    assert found, "the gateway middleware is not installed"
    resolvers: CredentialResolvers = found[0].kwargs["resolvers"]
    real_merchant, real_consumer = resolvers.merchant_key, resolvers.access_token

    async def merchant_key(secret: str) -> Merchant | None:
        for prefix, suspended in ((SUSPENDED_PREFIX, True), (MERCHANT_PREFIX, False)):
            if secret.startswith(prefix):
                merchant_id = secret.removeprefix(prefix)
                return Merchant(merchant_id, f"key_{merchant_id}", suspended=suspended)
        return await real_merchant(secret) if real_merchant is not None else None

    async def access_token(token: str) -> Consumer | None:
        if token.startswith(CONSUMER_PREFIX):
            consumer_id = token.removeprefix(CONSUMER_PREFIX)
            return Consumer(consumer_id, f"ses_{consumer_id}")
        return await real_consumer(token) if real_consumer is not None else None

    resolvers.merchant_key = merchant_key
    resolvers.access_token = access_token


class Kind(StrEnum):
    TENT = "tent"
    STOVE = "stove"


# Failures are one-shot per `tag`: the first request fails, a retry of it goes through, as
# after a transient crash.
_failed_once: set[str] = set()

Failure = Literal[
    "crash_before_respond",  # an exception after the business write, before the answer
    "crash_after_respond",  # an exception after the answer was written, before commit
    "conflict_after_respond",  # a problem (4xx) raised after the answer was written
    "unavailable",  # a 503 problem answer
]


class WidgetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: int = Field(strict=True, gt=0, le=MAX_AMOUNT)
    currency: Literal["USD", "EUR", "GBP", "CAD", "AUD"]
    kind: Kind
    card_number: str = Field(pattern=r"^[0-9]{12,19}$")
    tag: str = Field(default="", max_length=80)
    slow_ms: int = Field(default=0, ge=0, le=2000)
    fail: Failure | None = None


class WidgetOut(BaseModel):
    id: str
    owner: str
    amount: int
    currency: str
    kind: Kind
    last4: str


router = APIRouter(prefix="/probe", tags=["probe"])


@router.post("/widgets", status_code=201, response_model=WidgetOut)
async def create_widget(body: WidgetIn, request: Request, principal: AnyP) -> Response:
    async with command(request) as cmd:
        widget_id = new_id("itm")
        await cmd.conn.execute(
            f"INSERT INTO {SCHEMA}.widgets (id, owner, amount, currency, kind, tag) "
            "VALUES ($1, $2, $3, $4, $5, $6)",
            widget_id,
            principal.owner,
            body.amount,
            body.currency,
            body.kind.value,
            body.tag,
        )
        if body.slow_ms:
            await cmd.conn.execute("SELECT pg_sleep($1)", body.slow_ms / 1000)
        fail = body.fail if body.fail and body.tag not in _failed_once else None
        if fail:
            _failed_once.add(body.tag)
        if fail == "crash_before_respond":
            raise RuntimeError("simulated crash after the business write")
        if fail == "unavailable":
            raise ProblemError(503, "unavailable", "Try again later.")
        response = await cmd.respond(
            201,
            WidgetOut(
                id=widget_id,
                owner=principal.owner,
                amount=body.amount,
                currency=body.currency,
                kind=body.kind,
                last4=body.card_number[-4:],
            ),
            action="probe.widget_created",
            entity_id=widget_id,
        )
        if fail == "crash_after_respond":
            raise RuntimeError("simulated crash before commit")
        if fail == "conflict_after_respond":
            raise conflict("probe_conflict", "Raised after the answer was written.")
    return response


@router.get("/merchant")
async def merchant_only(principal: MerchantP) -> dict[str, Any]:
    return {"merchant_id": principal.merchant_id}


@router.get("/consumer")
async def consumer_only(principal: ConsumerP) -> dict[str, Any]:
    return {"consumer_id": principal.consumer_id}


@router.get("/operator")
async def operator_only(principal: OperatorP) -> dict[str, Any]:
    return {"actor": principal.actor}


@router.get("/anyone")
async def anyone(principal: AnyP) -> dict[str, Any]:
    return {"actor": principal.actor}


@router.get("/boom")
async def boom() -> dict[str, Any]:
    raise RuntimeError("an unexpected failure deep inside a handler")
