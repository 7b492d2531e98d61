"""FastAPI dependencies that admit one or more kinds of principal."""

from __future__ import annotations

import hmac
from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, Request

from bnpl.gateway.principals import (
    Anonymous,
    Consumer,
    InvalidCredentials,
    Merchant,
    Operator,
    Principal,
)
from bnpl.kit.errors import forbidden, unauthenticated


def current_principal(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal


def _authenticated(request: Request) -> Operator | Merchant | Consumer:
    principal = current_principal(request)
    if isinstance(principal, Anonymous | InvalidCredentials):
        raise unauthenticated()
    return principal


async def require_operator(request: Request) -> Operator:
    principal = _authenticated(request)
    if not isinstance(principal, Operator):
        raise forbidden()
    return principal


async def require_merchant(request: Request) -> Merchant:
    principal = _authenticated(request)
    if not isinstance(principal, Merchant):
        raise forbidden()
    return principal


async def require_consumer(request: Request) -> Consumer:
    principal = _authenticated(request)
    if not isinstance(principal, Consumer):
        raise forbidden()
    return principal


async def require_operator_or_merchant(request: Request) -> Operator | Merchant:
    principal = _authenticated(request)
    if isinstance(principal, Consumer):
        raise forbidden()
    return principal


async def require_operator_or_consumer(request: Request) -> Operator | Consumer:
    principal = _authenticated(request)
    if isinstance(principal, Merchant):
        raise forbidden()
    return principal


async def require_any(request: Request) -> Operator | Merchant | Consumer:
    return _authenticated(request)


async def require_metrics_reader(request: Request) -> None:
    """The operator, or whoever sends `Authorization: Bearer <BNPL_METRICS_TOKEN>` (a scraper
    such as Prometheus, which should not hold the operator's token)."""
    expected: str | None = request.app.state.runtime.settings.metrics_token
    if expected:
        scheme, _, credential = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            credential.strip().encode(), expected.encode()
        ):
            return
    await require_operator(request)


# The dependencies are coroutines: FastAPI runs a plain `def` dependency in its thread pool,
# a thread hop (and a GIL hand-off) on every request for a few attribute reads.
OperatorP = Annotated[Operator, Depends(require_operator)]
MerchantP = Annotated[Merchant, Depends(require_merchant)]
ConsumerP = Annotated[Consumer, Depends(require_consumer)]
OperatorOrMerchantP = Annotated[Operator | Merchant, Depends(require_operator_or_merchant)]
OperatorOrConsumerP = Annotated[Operator | Consumer, Depends(require_operator_or_consumer)]
AnyP = Annotated[Operator | Merchant | Consumer, Depends(require_any)]
MetricsReader = Depends(require_metrics_reader)

# The kinds of principal each guard admits: the OpenAPI document's security comes from here.
ADMITTED: dict[Callable[[Request], object], tuple[str, ...]] = {
    require_operator: ("operator",),
    require_merchant: ("merchant",),
    require_consumer: ("consumer",),
    require_operator_or_merchant: ("operator", "merchant"),
    require_operator_or_consumer: ("operator", "consumer"),
    require_any: ("operator", "merchant", "consumer"),
    require_metrics_reader: ("operator",),
}
