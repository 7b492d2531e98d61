"""Credit endpoints: `GET /v1/credit/decisions/{id}` (operator). Decisions themselves are
made by the checkout's confirm."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from bnpl.credit import service
from bnpl.credit.schemas import DecisionOut, decision_out
from bnpl.gateway import OperatorP, runtime
from bnpl.kit.errors import not_found

router = APIRouter(tags=["credit"])

_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {"description": "Problem details", "content": {"application/problem+json": {}}}
    for status in (401, 403, 404)
}


@router.get("/v1/credit/decisions/{decision_id}", response_model=DecisionOut, responses=_PROBLEMS)
async def get_decision(request: Request, decision_id: str, _: OperatorP) -> DecisionOut:
    """A credit decision: outcome, reasons, score, model version, features and latency."""
    async with runtime(request).db.connection() as conn:
        row = await service.get_decision(conn, decision_id)
    if row is None:
        raise not_found("credit decision")
    return decision_out(row)
