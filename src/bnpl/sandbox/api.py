"""`POST /v1/sandbox/clock` and `GET /v1/sandbox/gateway/charges` (not in production)."""

from __future__ import annotations

from datetime import datetime

import isodate
from fastapi import APIRouter, Depends, Request
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from bnpl.gateway import OperatorP, runtime
from bnpl.kit.clock import ClockError
from bnpl.kit.errors import ProblemError, not_found, validation_error


def sandbox_only(request: Request) -> None:
    if not runtime(request).settings.sandbox:
        raise not_found("endpoint")


router = APIRouter(tags=["sandbox"], dependencies=[Depends(sandbox_only)])


class ClockMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    advance: str | None = Field(default=None, max_length=64, examples=["P14D"])
    to: AwareDatetime | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ClockMove:
        if (self.advance is None) == (self.to is None):
            raise ValueError("give exactly one of `advance` and `to`")
        return self


class ClockNow(BaseModel):
    now: datetime


@router.post("/v1/sandbox/clock", response_model=ClockNow)
async def move_clock(body: ClockMove, request: Request, _: OperatorP) -> ClockNow:
    """Move business time forward; answers once everything that fell due has run."""
    rt = runtime(request)
    async with rt.db.connection() as conn:
        await rt.clock.refresh(conn)
    if body.advance is not None:
        try:
            duration = isodate.parse_duration(body.advance)
        except (isodate.ISO8601Error, ValueError) as exc:
            raise validation_error("`advance` must be an ISO 8601 duration", "advance") from exc
        target = rt.clock.now() + duration
        if target < rt.clock.now():
            raise validation_error("time only moves forward", "advance")
    else:
        assert body.to is not None
        target = body.to
        if target < rt.clock.now():
            raise ProblemError(422, "validation_error", "time only moves forward")
    try:
        now = await rt.scheduler.advance_to(target)
    except ClockError as exc:
        raise ProblemError(422, "validation_error", str(exc)) from exc
    return ClockNow(now=now)
