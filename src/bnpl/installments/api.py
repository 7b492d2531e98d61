"""Plan endpoints: `GET /v1/plans/{id}` and `GET /v1/me/plans` (API.md, "Plans")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from bnpl.gateway import AnyP, Consumer, ConsumerP, Merchant, Operator, runtime
from bnpl.installments import service
from bnpl.installments.models import Plan
from bnpl.installments.schemas import PlanOut, plan_out
from bnpl.kit.errors import not_found
from bnpl.kit.pagination import Page, PageParams, make_page, page_params

router = APIRouter(tags=["plans"])


def _may_see(principal: Operator | Merchant | Consumer, plan: Plan) -> bool:
    if isinstance(principal, Merchant):
        return plan.merchant_id == principal.merchant_id
    if isinstance(principal, Consumer):
        return plan.consumer_id == principal.consumer_id
    return True


@router.get("/v1/plans/{plan_id}", response_model=PlanOut)
async def get_plan(request: Request, plan_id: str, principal: AnyP) -> PlanOut:
    """A plan: for its consumer, its merchant and operators (404 for anyone else)."""
    async with runtime(request).db.connection() as conn:
        plan = await service.get_plan(conn, plan_id)
    if plan is None or not _may_see(principal, plan):
        raise not_found("plan")
    return plan_out(plan)


@router.get("/v1/me/plans", response_model=Page[PlanOut])
async def list_my_plans(
    request: Request,
    principal: ConsumerP,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PlanOut]:
    """The consumer's plans, newest first."""
    async with runtime(request).db.connection() as conn:
        plans = await service.plans_of_consumer(
            conn, principal.consumer_id, page.limit + 1, page.starting_after
        )
    return make_page(plans, page.limit, plan_out, lambda p: p.id)
