"""The web pages' routes, mounted by the app like every context's router (none of them is
in the OpenAPI document: that describes the JSON API)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from bnpl.web import account_pages, checkout_pages, index, merchant_pages, ops_pages, shop, widget
from bnpl.web.pages import static

router = APIRouter(include_in_schema=False)


@router.get("/static/web/{name}")
async def static_file(name: str) -> Response:
    return static(name)


router.include_router(index.router)
router.include_router(checkout_pages.router)
router.include_router(account_pages.router)
router.include_router(merchant_pages.router)
router.include_router(ops_pages.router)
router.include_router(widget.router)
router.include_router(shop.router)
