"""Plan endpoints: `GET /v1/plans/{id}` and `GET /v1/me/plans` (API.md, "Plans")."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from bnpl import payments
from bnpl.gateway import AnyP, Consumer, ConsumerP, Merchant, Operator, command, runtime
from bnpl.installments import collections, service
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


class PlanPaymentRequest(BaseModel):
    kind: Literal["next_installment", "payoff"]
    payment_method_id: str = Field(min_length=1, max_length=64)


class PaymentMethodRequest(BaseModel):
    payment_method_id: str = Field(min_length=1, max_length=64)


@router.post("/v1/plans/{plan_id}/payments", status_code=201, response_model=payments.PaymentOut)
async def pay_plan(
    plan_id: str, body: PlanPaymentRequest, request: Request, consumer: ConsumerP
) -> Response:
    """Pay the next installment now, or pay the plan off (future interest waived)."""
    rt = runtime(request)
    async with command(request) as cmd:
        claim = await collections.begin_consumer_payment(
            cmd.conn,
            plan_id=plan_id,
            consumer_id=consumer.consumer_id,
            kind=body.kind,
            payment_method_id=body.payment_method_id,
            at=cmd.at,
        )
    # The payment and its gateway key are on record; charge outside any transaction.
    settlement = await collections.charge(rt, claim)
    async with command(request) as cmd:
        payment = await collections.finish_consumer_payment(cmd.conn, rt, claim, settlement, cmd.at)
        return await cmd.respond(
            201,
            payments.PaymentOut.of(payment),
            action=f"plan.{body.kind}_paid",
            entity_id=plan_id,
            data={"payment_id": payment.id, "status": payment.status.value},
        )


@router.put("/v1/plans/{plan_id}/payment_method", response_model=PlanOut)
async def set_payment_method(
    plan_id: str, body: PaymentMethodRequest, request: Request, consumer: ConsumerP
) -> Response:
    """Change the plan's autopay card; anything overdue is attempted at once."""
    rt = runtime(request)
    async with command(request) as cmd:
        await collections.change_payment_method(
            cmd.conn,
            plan_id=plan_id,
            consumer_id=consumer.consumer_id,
            payment_method_id=body.payment_method_id,
            at=cmd.at,
        )
    await collections.collect_plan_now(rt, plan_id, rt.clock.now())
    async with command(request) as cmd:
        plan = await service.get_plan(cmd.conn, plan_id)
        assert plan is not None
        return await cmd.respond(
            200,
            plan_out(plan),
            action="plan.payment_method_changed",
            entity_id=plan_id,
            data={"payment_method_id": body.payment_method_id},
        )
