"""`GET /v1/payments/{id}` and `GET /v1/payments?plan_id=` (its consumer, operator)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from bnpl.gateway import Consumer, OperatorOrConsumerP, runtime
from bnpl.kit.errors import not_found
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.payments import repository as repo
from bnpl.payments.schemas import PaymentOut

router = APIRouter(tags=["payments"])


@router.get("/v1/payments/{payment_id}", response_model=PaymentOut)
async def get_payment(payment_id: str, request: Request, who: OperatorOrConsumerP) -> PaymentOut:
    async with runtime(request).db.connection() as conn:
        payment = await repo.get_payment(conn, payment_id)
    if payment is None or (isinstance(who, Consumer) and payment.consumer_id != who.consumer_id):
        raise not_found("payment")
    return PaymentOut.of(payment)


@router.get("/v1/payments", response_model=Page[PaymentOut])
async def list_payments(
    request: Request,
    who: OperatorOrConsumerP,
    page: Annotated[PageParams, Depends(page_params)],
    plan_id: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[PaymentOut]:
    consumer_id = who.consumer_id if isinstance(who, Consumer) else None
    async with runtime(request).db.connection() as conn:
        payments = await repo.list_payments(
            conn,
            plan_id=plan_id,
            consumer_id=consumer_id,
            after=page.starting_after,
            limit=page.limit + 1,
        )
    return make_page(payments, page.limit, PaymentOut.of, lambda p: p.id)
