"""`POST /v1/sandbox/clock`, `GET /v1/sandbox/gateway/charges`, `GET /v1/sandbox/payouts` and
`POST /v1/sandbox/seed` (not in production)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Protocol, runtime_checkable

import isodate
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from bnpl import identity
from bnpl.gateway import OperatorP, command, runtime
from bnpl.kit.clock import ClockError, wall_now
from bnpl.kit.errors import ProblemError, not_found, validation_error
from bnpl.kit.wire import Timestamp
from bnpl.providers import ProviderUnavailable
from bnpl.sandbox import seed


@runtime_checkable
class SandboxRecords(Protocol):
    """A gateway adapter that can list what the sandbox simulator charged a card."""

    async def list_charges(self, token: str) -> list[dict[str, Any]]: ...


@runtime_checkable
class SandboxPayouts(Protocol):
    """A payout adapter that can list what the sandbox simulator paid for a reference."""

    async def sandbox_payouts(self, reference: str) -> list[dict[str, Any]]: ...


async def sandbox_only(request: Request) -> None:
    if not runtime(request).settings.sandbox:
        raise not_found("endpoint")


router = APIRouter(tags=["sandbox"], dependencies=[Depends(sandbox_only)])


class ClockMove(BaseModel):
    # Exactly one of the two, as the document says (`oneOf`), so that a body valid by the
    # document is valid here.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "oneOf": [
                {"required": ["advance"], "properties": {"advance": {"type": "string"}}},
                {"required": ["to"], "properties": {"to": {"type": "string"}}},
            ]
        },
    )

    advance: str | None = Field(default=None, max_length=64, examples=["P14D"])
    to: Timestamp | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ClockMove:
        if (self.advance is None) == (self.to is None):
            raise ValueError("give exactly one of `advance` and `to`")
        return self


# Everything scheduled from the new time (due dates, expiries, retention) must still fit in
# the calendar, which ends in 9999.
MAX_AHEAD = timedelta(days=100 * 366)

# The audit records of clock moves name the platform clock as their entity.
CLOCK_ENTITY = "platform.clock"


class ClockNow(BaseModel):
    now: datetime


@router.post("/v1/sandbox/clock", response_model=ClockNow)
async def move_clock(body: ClockMove, request: Request, _: OperatorP) -> Response:
    """Move business time forward; answers once everything that fell due has run."""
    rt = runtime(request)
    async with rt.db.connection() as conn:
        await rt.clock.refresh(conn)
    current = rt.clock.now()
    if body.advance is not None:
        field_name = "advance"
        try:
            target = current + isodate.parse_duration(body.advance)
        except (isodate.ISO8601Error, ValueError, OverflowError) as exc:
            # OverflowError/ValueError also when the sum falls off the calendar (P99999Y).
            raise validation_error("`advance` must be an ISO 8601 duration", "advance") from exc
    else:
        assert body.to is not None
        field_name, target = "to", body.to
    if target < current:
        raise validation_error("time only moves forward", field_name)
    if target - wall_now() > MAX_AHEAD:
        raise validation_error("the sandbox clock goes at most 100 years ahead", field_name)
    try:
        now = await rt.scheduler.advance_to(target)
    except ClockError as exc:
        raise validation_error(str(exc), field_name) from exc
    # The move ran as many transactions (each piece of due work its own); its audit record and
    # idempotent answer commit together once everything due has run.
    async with command(request) as cmd:
        return await cmd.respond(
            200,
            ClockNow(now=now),
            action="sandbox.clock_advanced",
            entity_id=CLOCK_ENTITY,
            data={"from": current.isoformat(), "to": now.isoformat()},
        )


class GatewayCharge(BaseModel):
    id: str
    amount: int
    currency: str
    status: str
    created_at: datetime


class GatewayCharges(BaseModel):
    data: list[GatewayCharge]


@router.get(
    "/v1/sandbox/gateway/charges",
    response_model=GatewayCharges,
    responses={404: {"description": "No such payment method (`not_found`)."}},
)
async def gateway_charges(
    request: Request,
    _: OperatorP,
    payment_method_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> GatewayCharges:
    """The gateway simulator's own record of what it charged the card (captured/refunded)."""
    rt = runtime(request)
    async with rt.db.connection() as conn:
        token = await identity.payment_method_token(
            conn, None, payment_method_id, include_deleted=True
        )
    if token is None:
        raise not_found("payment method")
    gateway = rt.providers.gateway
    if not isinstance(gateway, SandboxRecords):
        raise not_found("endpoint")
    try:
        charges = await gateway.list_charges(token)
    except ProviderUnavailable as exc:
        raise ProblemError(503, "provider_unavailable", "The gateway did not answer.") from exc
    return GatewayCharges(
        data=[
            GatewayCharge(
                id=c["id"],
                amount=c["amount"],
                currency=c["currency"],
                status=c["status"],
                created_at=c["created_at"],
            )
            for c in charges
        ]
    )


class SandboxPayout(BaseModel):
    id: str
    reference: str
    amount: int
    currency: str
    account_last4: str
    status: str
    created_at: datetime


class SandboxPayoutList(BaseModel):
    data: list[SandboxPayout]


@router.get("/v1/sandbox/payouts", response_model=SandboxPayoutList)
async def sandbox_payouts(
    request: Request,
    _: OperatorP,
    settlement_id: Annotated[str, Query(min_length=1, max_length=64)],
) -> SandboxPayoutList:
    """The payout simulator's own record of what it paid out for a settlement."""
    payouts = runtime(request).providers.payouts
    if not isinstance(payouts, SandboxPayouts):
        raise not_found("endpoint")
    try:
        found = await payouts.sandbox_payouts(settlement_id)
    except ProviderUnavailable as exc:
        raise ProblemError(
            503, "provider_unavailable", "The payout provider did not answer."
        ) from exc
    return SandboxPayoutList(data=[SandboxPayout.model_validate(p) for p in found])


@router.post("/v1/sandbox/seed", status_code=201, response_model=seed.SeedOut)
async def seed_platform(body: seed.SeedRequest, request: Request, _: OperatorP) -> Response:
    """Bulk-create active merchants (one API key each) and KYC-verified consumers (a card and
    a live session each) for load tests; answers their credentials (`bnpl bench`)."""
    return await seed.seed(request, body)
