"""Merchant endpoints: profiles and config (`/v1/merchants`) and secret API keys."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from bnpl.gateway import Merchant, OperatorOrMerchantP, OperatorP, command, runtime
from bnpl.kit.errors import not_found
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.merchants import service
from bnpl.merchants.publishable.api import router as publishable_keys_router
from bnpl.merchants.schemas import (
    ApiKeyCreated,
    ApiKeyOut,
    MerchantCreate,
    MerchantOut,
    MerchantPatch,
)
from bnpl.merchants.settlements.api import router as settlements_router
from bnpl.merchants.webhooks.api import router as webhooks_router
from bnpl.merchants.webhooks.failures import router as webhook_failures_router

router = APIRouter(tags=["merchants"])


@router.post("/v1/merchants", status_code=201, response_model=MerchantOut)
async def create_merchant(body: MerchantCreate, request: Request, _: OperatorP) -> Response:
    """Apply a merchant: it is `pending_review` until business verification decides."""
    aes_key = runtime(request).settings.aes_key
    async with command(request) as cmd:
        merchant = await service.create_merchant(cmd.conn, body, at=cmd.at, aes_key=aes_key)
        return await cmd.respond(
            201, MerchantOut.of(merchant), action="merchant.created", entity_id=merchant.id
        )


@router.get("/v1/merchants", response_model=Page[MerchantOut])
async def list_merchants(
    request: Request,
    _: OperatorP,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[
        Literal["pending_review", "active", "rejected", "suspended"] | None, Query()
    ] = None,
) -> Page[MerchantOut]:
    async with runtime(request).db.connection() as conn:
        rows = await service.list_merchants(
            conn, status=status, after=page.starting_after, limit=page.limit + 1
        )
    return make_page(rows, page.limit, MerchantOut.of, lambda m: m.id)


@router.get("/v1/merchants/{merchant_id}", response_model=MerchantOut)
async def get_merchant(
    merchant_id: str, request: Request, principal: OperatorOrMerchantP
) -> MerchantOut:
    """The merchant (operator, or the merchant itself)."""
    if isinstance(principal, Merchant) and principal.merchant_id != merchant_id:
        raise not_found("merchant")
    async with runtime(request).db.connection() as conn:
        return MerchantOut.of(await service.get_merchant(conn, merchant_id))


@router.patch("/v1/merchants/{merchant_id}", response_model=MerchantOut)
async def update_merchant(
    merchant_id: str, body: MerchantPatch, request: Request, _: OperatorP
) -> Response:
    """Change config fields (a partial merge) and/or move between `active` and `suspended`."""
    async with command(request) as cmd:
        merchant, changed = await service.update_merchant(cmd.conn, merchant_id, body, at=cmd.at)
        return await cmd.respond(
            200,
            MerchantOut.of(merchant),
            action="merchant.updated",
            entity_id=merchant.id,
            data=changed,
        )


@router.post("/v1/merchants/{merchant_id}/api_keys", status_code=201, response_model=ApiKeyCreated)
async def create_api_key(merchant_id: str, request: Request, _: OperatorP) -> Response:
    """A new secret key; the secret is in this answer only (409 unless the merchant is active).

    An Idempotency-Key replay answers the same bytes, secret included: the stored answer is
    encrypted at rest, and the key itself is kept only as a hash.
    """
    livemode = not runtime(request).settings.sandbox
    async with command(request) as cmd:
        key, secret = await service.create_api_key(
            cmd.conn, merchant_id, at=cmd.at, livemode=livemode
        )
        shown = ApiKeyCreated(
            id=key.id,
            merchant_id=key.merchant_id,
            secret=secret,
            livemode=key.livemode,
            created_at=key.created_at,
        )
        return await cmd.respond(
            201,
            shown,
            action="merchant.api_key_created",
            entity_id=key.id,
            data={"merchant_id": merchant_id},
        )


@router.get("/v1/merchants/{merchant_id}/api_keys", response_model=Page[ApiKeyOut])
async def list_api_keys(
    merchant_id: str,
    request: Request,
    _: OperatorP,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[ApiKeyOut]:
    """The merchant's keys, oldest first, revoked ones included (never their secrets)."""
    async with runtime(request).db.connection() as conn:
        keys = await service.list_api_keys(
            conn, merchant_id, after=page.starting_after, limit=page.limit + 1
        )
    return make_page(keys, page.limit, ApiKeyOut.of, lambda k: k.id)


@router.delete("/v1/merchants/{merchant_id}/api_keys/{key_id}", status_code=204)
async def revoke_api_key(merchant_id: str, key_id: str, request: Request, _: OperatorP) -> Response:
    """Revoke a key: it stops working on the very next request."""
    async with command(request) as cmd:
        await service.revoke_api_key(cmd.conn, merchant_id, key_id, at=cmd.at)
        return await cmd.respond(
            204,
            None,
            action="merchant.api_key_revoked",
            entity_id=key_id,
            data={"merchant_id": merchant_id},
        )


router.include_router(publishable_keys_router)
router.include_router(settlements_router)
router.include_router(webhooks_router)
router.include_router(webhook_failures_router)
