"""Publishable keys (`/v1/merchants/{id}/publishable_keys`): issued and revoked by operators,
listed by them and by the merchant itself. A publishable key only reads the merchant's offers
(`GET /widget/v1/offers`); the gateway never takes one as a credential."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from bnpl.gateway import Merchant, OperatorOrMerchantP, OperatorP, command, runtime
from bnpl.kit.errors import conflict, not_found
from bnpl.kit.ids import new_id
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.merchants import repository as merchants_repository
from bnpl.merchants.domain import MerchantStatus
from bnpl.merchants.publishable import repository
from bnpl.merchants.publishable.domain import PublishableKey, new_key

router = APIRouter(tags=["merchants"])


class PublishableKeyOut(BaseModel):
    id: str
    merchant_id: str
    key: str
    livemode: bool
    created_at: datetime
    revoked_at: datetime | None

    @classmethod
    def of(cls, k: PublishableKey) -> PublishableKeyOut:
        return cls(
            id=k.id,
            merchant_id=k.merchant_id,
            key=k.key,
            livemode=k.livemode,
            created_at=k.created_at,
            revoked_at=k.revoked_at,
        )


@router.post(
    "/v1/merchants/{merchant_id}/publishable_keys",
    status_code=201,
    response_model=PublishableKeyOut,
)
async def create_publishable_key(merchant_id: str, request: Request, _: OperatorP) -> Response:
    """A new publishable key (`pk_test_...`) for the merchant widget; 409
    `merchant_not_active` unless the merchant is active."""
    livemode = not runtime(request).settings.sandbox
    async with command(request) as cmd:
        merchant = await merchants_repository.get_merchant(cmd.conn, merchant_id)
        if merchant is None:
            raise not_found("merchant")
        if merchant.status is not MerchantStatus.ACTIVE:
            raise conflict("merchant_not_active", "Keys are only issued to active merchants.")
        key = PublishableKey(new_id("key"), merchant_id, new_key(livemode), livemode, cmd.at, None)
        await repository.insert(cmd.conn, key)
        return await cmd.respond(
            201,
            PublishableKeyOut.of(key),
            action="merchant.publishable_key_created",
            entity_id=key.id,
            data={"merchant_id": merchant_id},
        )


@router.get("/v1/merchants/{merchant_id}/publishable_keys", response_model=Page[PublishableKeyOut])
async def list_publishable_keys(
    merchant_id: str,
    request: Request,
    principal: OperatorOrMerchantP,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[PublishableKeyOut]:
    """The merchant's publishable keys, oldest first, revoked ones included."""
    if isinstance(principal, Merchant) and principal.merchant_id != merchant_id:
        raise not_found("merchant")
    async with runtime(request).db.connection() as conn:
        keys = await repository.list_for(
            conn, merchant_id, after=page.starting_after, limit=page.limit + 1
        )
    return make_page(keys, page.limit, PublishableKeyOut.of, lambda k: k.id)


@router.delete("/v1/merchants/{merchant_id}/publishable_keys/{key_id}", status_code=204)
async def revoke_publishable_key(
    merchant_id: str, key_id: str, request: Request, _: OperatorP
) -> Response:
    """Revoke a publishable key: widgets carrying it stop showing offers at once."""
    async with command(request) as cmd:
        if not await repository.revoke(cmd.conn, merchant_id, key_id, cmd.at):
            raise not_found("publishable key")
        return await cmd.respond(
            204,
            None,
            action="merchant.publishable_key_revoked",
            entity_id=key_id,
            data={"merchant_id": merchant_id},
        )
