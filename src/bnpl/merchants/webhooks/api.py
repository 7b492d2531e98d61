"""Webhook endpoints (API.md "Webhooks"): a merchant's own, and redelivery of its events."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response

from bnpl.gateway import MerchantP, command, runtime
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.merchants.webhooks import service
from bnpl.merchants.webhooks.schemas import (
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointOut,
    Redelivery,
)

router = APIRouter(tags=["webhooks"])


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        s: {"description": "Problem details", "content": {"application/problem+json": {}}}
        for s in statuses
    }


@router.post(
    "/v1/webhook_endpoints",
    status_code=201,
    response_model=EndpointCreated,
    responses=_problems(409, 422),
)
async def create_endpoint(body: EndpointCreate, request: Request, merchant: MerchantP) -> Response:
    """Subscribe a url to event types (`*`: all). The signing secret is in this answer only
    (an Idempotency-Key replay answers the same bytes; stored answers are encrypted).

    409 `endpoint_limit_reached`: the merchant already has 16 endpoints (delete one first).
    422 `invalid_webhook_url`: not https (in sandbox mode, http to 127.0.0.1 or localhost
    too), credentials in it, or a host that is not allowed (an address that is not public, or
    a name that does not resolve to public addresses only; the answer does not say which).
    """
    settings = runtime(request).settings
    async with command(request) as cmd:
        endpoint, secret = await service.create_endpoint(
            cmd.conn,
            merchant.merchant_id,
            url=body.url,
            events=body.events,
            sandbox=settings.sandbox,
            aes_key=settings.aes_key,
            at=cmd.at,
        )
        shown = EndpointCreated(**EndpointOut.of(endpoint).model_dump(), secret=secret)
        return await cmd.respond(
            201,
            shown,
            action="webhook_endpoint.created",
            entity_id=endpoint.id,
            data={"url": endpoint.url, "events": list(endpoint.events)},
        )


@router.get("/v1/webhook_endpoints", response_model=Page[EndpointOut])
async def list_endpoints(
    request: Request, merchant: MerchantP, page: Annotated[PageParams, Depends(page_params)]
) -> Page[EndpointOut]:
    async with runtime(request).db.connection() as conn:
        found = await service.list_endpoints(
            conn, merchant.merchant_id, after=page.starting_after, limit=page.limit + 1
        )
    return make_page(found, page.limit, EndpointOut.of, lambda e: e.id)


@router.get("/v1/webhook_endpoints/{endpoint_id}", response_model=EndpointOut)
async def get_endpoint(endpoint_id: str, request: Request, merchant: MerchantP) -> EndpointOut:
    async with runtime(request).db.connection() as conn:
        return EndpointOut.of(await service.get_endpoint(conn, endpoint_id, merchant.merchant_id))


@router.delete("/v1/webhook_endpoints/{endpoint_id}", status_code=204)
async def delete_endpoint(endpoint_id: str, request: Request, merchant: MerchantP) -> Response:
    """The endpoint receives nothing more; what it still had to receive is canceled."""
    async with command(request) as cmd:
        await service.delete_endpoint(cmd.conn, endpoint_id, merchant.merchant_id, cmd.at)
        return await cmd.respond(
            204, None, action="webhook_endpoint.deleted", entity_id=endpoint_id
        )


@router.get("/v1/webhook_endpoints/{endpoint_id}/deliveries", response_model=Page[DeliveryOut])
async def list_deliveries(
    endpoint_id: str,
    request: Request,
    merchant: MerchantP,
    page: Annotated[PageParams, Depends(page_params)],
) -> Page[DeliveryOut]:
    """One row per attempt, oldest first (`status_code` null when no answer came)."""
    async with runtime(request).db.connection() as conn:
        found = await service.list_deliveries(
            conn,
            endpoint_id,
            merchant.merchant_id,
            after=page.starting_after,
            limit=page.limit + 1,
        )
    return make_page(found, page.limit, DeliveryOut.of, lambda d: d.id)


@router.post("/v1/events/{event_id}/redeliver", status_code=202, response_model=Redelivery)
async def redeliver(event_id: str, request: Request, merchant: MerchantP) -> Response:
    """Send the event again to the endpoints subscribed to its type."""
    async with command(request) as cmd:
        count = await service.redeliver(cmd.conn, merchant.merchant_id, event_id, cmd.at)
        return await cmd.respond(
            202,
            Redelivery(event_id=event_id, endpoints=count),
            action="event.redelivered",
            entity_id=event_id,
        )
