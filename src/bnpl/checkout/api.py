"""Checkout endpoints (API.md, "Checkouts"): a thin layer over the service."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request, Response

from bnpl import merchants, payments
from bnpl.checkout import repository, service
from bnpl.checkout.domain import (
    Checkout,
    CheckoutStatus,
    CheckoutStatusFilter,
    PlanOption,
    hosted_path,
)
from bnpl.checkout.schemas import (
    CaptureRequest,
    CheckoutCreate,
    CheckoutOut,
    ConfirmRequest,
    RefundOut,
    RefundRequest,
)
from bnpl.gateway import (
    AnyP,
    Consumer,
    ConsumerP,
    Merchant,
    MerchantP,
    Operator,
    command,
    runtime,
)
from bnpl.kit.db import Connection
from bnpl.kit.errors import ProblemError, not_found
from bnpl.kit.pagination import Page, PageParams, make_page, page_params

router = APIRouter(tags=["checkouts"])


def redirect_url(request: Request, checkout_id: str) -> str:
    """The hosted checkout page: on `BNPL_PUBLIC_URL` when set, else on the URL the
    request came to (`bnpl up` on a laptop)."""
    settings = runtime(request).settings
    base = settings.public_url or str(request.base_url)
    return base.rstrip("/") + hosted_path(settings.aes_key, checkout_id)


async def _out(conn: Connection, checkout: Checkout, request: Request) -> CheckoutOut:
    options: list[PlanOption] = []
    if checkout.status.public == "open":
        config = await merchants.merchant_config(conn, checkout.merchant_id)
        if config is not None:
            options = service.plan_options(config, checkout.amount)
    return CheckoutOut.of(checkout, options, redirect_url(request, checkout.id))


@router.post("/v1/checkouts", status_code=201, response_model=CheckoutOut)
async def create_checkout(body: CheckoutCreate, request: Request, merchant: MerchantP) -> Response:
    async with command(request) as cmd:
        checkout, options = await service.create_checkout(
            cmd.conn,
            merchant_id=merchant.merchant_id,
            amount=body.amount,
            currency=body.currency,
            merchant_reference=body.merchant_reference,
            items=[i.model_dump() for i in body.items] if body.items is not None else None,
            consumer_email=body.consumer_email,
            success_url=body.success_url,
            cancel_url=body.cancel_url,
            at=cmd.at,
        )
        return await cmd.respond(
            201,
            CheckoutOut.of(checkout, options, redirect_url(request, checkout.id)),
            action="checkout.created",
            entity_id=checkout.id,
        )


@router.get("/v1/checkouts/{checkout_id}", response_model=CheckoutOut)
async def get_checkout(checkout_id: str, request: Request, who: AnyP) -> CheckoutOut:
    async with runtime(request).db.connection() as conn:
        checkout = await service.get_checkout(conn, checkout_id)
        if checkout is None or not _may_read(who, checkout):
            raise not_found("checkout")
        return await _out(conn, checkout, request)


def _may_read(who: Operator | Merchant | Consumer, checkout: Checkout) -> bool:
    if isinstance(who, Merchant):
        return who.merchant_id == checkout.merchant_id
    if isinstance(who, Consumer):
        return who.consumer_id == checkout.consumer_id
    return True  # operator


@router.get("/v1/checkouts", response_model=Page[CheckoutOut])
async def list_checkouts(
    request: Request,
    merchant: MerchantP,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[CheckoutStatusFilter | None, Query()] = None,
) -> Page[CheckoutOut]:
    statuses = None
    if status is not None:
        statuses = ["open", "confirming"] if status == "open" else [status.value]
    async with runtime(request).db.connection() as conn:
        found = await repository.list_for_merchant(
            conn,
            merchant.merchant_id,
            statuses=statuses,
            after=page.starting_after,
            limit=page.limit + 1,
        )
        shaped = [await _out(conn, c, request) for c in found]
    return make_page(shaped, page.limit, lambda c: c, lambda c: c.id)


@router.post("/v1/checkouts/{checkout_id}/confirm", response_model=CheckoutOut)
async def confirm_checkout(
    checkout_id: str, body: ConfirmRequest, request: Request, consumer: ConsumerP
) -> Response:
    rt = runtime(request)
    async with command(request) as cmd:
        step = await service.begin_confirm(
            cmd.conn,
            rt,
            checkout_id=checkout_id,
            consumer_id=consumer.consumer_id,
            plan=body.plan.value,
            payment_method_id=body.payment_method_id,
            at=cmd.at,
        )
        if step.down_payment is None:
            return await cmd.respond(
                200,
                await _out(cmd.conn, step.checkout, request),
                action=f"checkout.{step.checkout.status.value}",
                entity_id=checkout_id,
            )
    # The down payment is on record (committed); charge it outside any transaction.
    settlement = await payments.run_charge(rt.providers.gateway, step.down_payment, rt.clock)
    async with command(request) as cmd:
        checkout = await service.finish_confirm(
            cmd.conn, rt, checkout_id=checkout_id, settlement=settlement, at=cmd.at
        )
        if checkout.status is not CheckoutStatus.CONFIRMING:
            return await cmd.respond(
                200,
                await _out(cmd.conn, checkout, request),
                action=f"checkout.{checkout.status.value}",
                entity_id=checkout_id,
            )
    # Still in flight: the attempts made (the money may have moved) and the resume time are
    # committed above; only then is the client told to come back.
    raise ProblemError(
        503,
        "payment_processing",
        "The gateway did not confirm the down payment yet; the checkout will be "
        "authorized or declined shortly.",
        headers={"Retry-After": "60"},
    )


@router.post("/v1/checkouts/{checkout_id}/capture", response_model=CheckoutOut)
async def capture_checkout(
    checkout_id: str,
    request: Request,
    merchant: MerchantP,
    body: Annotated[CaptureRequest | None, Body()] = None,
) -> Response:
    async with command(request) as cmd:
        checkout = await service.capture(
            cmd.conn,
            checkout_id=checkout_id,
            merchant_id=merchant.merchant_id,
            amount=body.amount if body else None,
            at=cmd.at,
        )
        return await cmd.respond(
            200,
            await _out(cmd.conn, checkout, request),
            action="checkout.captured",
            entity_id=checkout_id,
        )


@router.post("/v1/checkouts/{checkout_id}/void", response_model=CheckoutOut)
async def void_checkout(checkout_id: str, request: Request, merchant: MerchantP) -> Response:
    async with command(request) as cmd:
        checkout = await service.void(
            cmd.conn, checkout_id=checkout_id, merchant_id=merchant.merchant_id, at=cmd.at
        )
        return await cmd.respond(
            200,
            await _out(cmd.conn, checkout, request),
            action="checkout.voided",
            entity_id=checkout_id,
        )


@router.post("/v1/checkouts/{checkout_id}/refunds", status_code=201, response_model=RefundOut)
async def refund_checkout(
    checkout_id: str, body: RefundRequest, request: Request, merchant: MerchantP
) -> Response:
    async with command(request) as cmd:
        refund = await service.refund(
            cmd.conn,
            checkout_id=checkout_id,
            merchant_id=merchant.merchant_id,
            amount=body.amount,
            reason=body.reason,
            at=cmd.at,
        )
        return await cmd.respond(
            201,
            _refund_out(refund),
            action="checkout.refunded",
            entity_id=checkout_id,
            data={"refund_id": refund.id, "amount": refund.amount},
        )


def _refund_out(refund: service.Refund) -> RefundOut:
    return RefundOut(
        id=refund.id,
        checkout_id=refund.checkout_id,
        amount=refund.amount,
        currency=refund.currency,
        reason=refund.reason,
        applied_to_plan=refund.applied_to_plan,
        refunded_to_consumer=refund.refunded_to_consumer,
        created_at=refund.created_at,
    )


@router.get("/v1/checkouts/{checkout_id}/refunds", response_model=Page[RefundOut])
async def list_refunds(
    checkout_id: str,
    request: Request,
    merchant: MerchantP,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[RefundOut]:
    async with runtime(request).db.connection() as conn:
        checkout = await service.get_checkout(conn, checkout_id)
        if checkout is None or checkout.merchant_id != merchant.merchant_id:
            raise not_found("checkout")
        refunds = await service.list_refunds(
            conn, checkout_id, after=page.starting_after, limit=page.limit + 1
        )
    return make_page(list(refunds), page.limit, _refund_out, lambda r: r.id)
