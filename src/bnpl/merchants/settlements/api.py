"""Settlement endpoints (API.md "Settlements"): a merchant's own, or any for the operator."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from bnpl.gateway import Merchant, OperatorOrMerchantP, runtime
from bnpl.kit.pagination import Page, PageParams, make_page, page_params
from bnpl.merchants.settlements import service
from bnpl.merchants.settlements.schemas import SettlementOut, SettlementStatusName

router = APIRouter(tags=["settlements"])


def _scope(principal: object, merchant_id: str | None) -> str | None:
    """The merchant whose settlements the principal may see (None: the operator, all)."""
    return principal.merchant_id if isinstance(principal, Merchant) else merchant_id


@router.get("/v1/settlements", response_model=Page[SettlementOut])
async def list_settlements(
    request: Request,
    principal: OperatorOrMerchantP,
    page: Annotated[PageParams, Depends(page_params)],
    status: Annotated[SettlementStatusName | None, Query()] = None,
    merchant_id: Annotated[str | None, Query(max_length=64, description="operator only")] = None,
) -> Page[SettlementOut]:
    """Settlements, oldest first: a merchant sees its own; the operator all, or one
    merchant's (`merchant_id`)."""
    async with runtime(request).db.connection() as conn:
        found = await service.list_settlements(
            conn,
            merchant_id=_scope(principal, merchant_id),
            status=status,
            after=page.starting_after,
            limit=page.limit + 1,
        )
    return make_page(found, page.limit, SettlementOut.of, lambda s: s.id)


@router.get("/v1/settlements/{settlement_id}", response_model=SettlementOut)
async def get_settlement(
    settlement_id: str, request: Request, principal: OperatorOrMerchantP
) -> SettlementOut:
    async with runtime(request).db.connection() as conn:
        found = await service.get_settlement(conn, settlement_id, _scope(principal, None))
    return SettlementOut.of(found)


@router.get(
    "/v1/settlements/{settlement_id}/report.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
)
async def settlement_report(
    settlement_id: str, request: Request, principal: OperatorOrMerchantP
) -> Response:
    """One line per capture (positive), refund and fee (negative) and carried-over balance,
    in signed minor units; the lines sum to the settlement's `net`."""
    async with runtime(request).db.connection() as conn:
        found = await service.get_settlement(conn, settlement_id, _scope(principal, None))
        report = await service.report(conn, found)
    return Response(
        report,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{found.id}.csv"'},
    )
