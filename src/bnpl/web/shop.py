"""The sandbox's demo shop (`/sandbox/shop`): a merchant's product page using the widget, and
the few lines of "merchant server" behind it, which make the checkout with the merchant's
secret key (never in the page), capture it when the shopper comes back approved, and show
the order. It exists only in the sandbox, and speaks only the public API.

Its merchant ("Demo Outdoor Co") is applied for with a fixed `Idempotency-Key`, so every API
process finds the same one (for the key's 24 hours; then a new one is made); each process
then takes a secret key of its own and the merchant's first publishable key."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bnpl.gateway import runtime
from bnpl.web import internal
from bnpl.web.pages import checked_form, not_found_page, redirect, refused, render
from bnpl.web.session import load

router = APIRouter(include_in_schema=False)

SHOP_NAME: Final = "Demo Outdoor Co"
MERCHANT_IDEMPOTENCY_KEY: Final = "sandbox-demo-shop-merchant-v1"
APR_BPS: Final = 1999


@dataclass(frozen=True, slots=True)
class Product:
    slug: str
    name: str
    price: int
    blurb: str


PRODUCTS: Final = (
    Product("mug", "Enamel camp mug", 2_400, "Keeps coffee hot at 3,000 m."),
    Product("tent", "Two-person tent", 40_000, "Sets up in four minutes, in the rain too."),
    Product("kayak", "Touring kayak", 240_000, "Fast, stable, 5.2 m of cedar-strip."),
)


@dataclass(frozen=True, slots=True)
class DemoMerchant:
    id: str
    secret: str
    publishable: str


_lock = asyncio.Lock()


async def demo_merchant(request: Request) -> DemoMerchant:
    """The demo shop's merchant, as this process's app knows it (made on first use)."""
    state = request.app.state
    async with _lock:
        found: DemoMerchant | None = getattr(state, "demo_shop", None)
        if found is None:
            found = state.demo_shop = await _provision(request)
        return found


async def _provision(request: Request) -> DemoMerchant:
    operator = runtime(request).settings.admin_token
    made = await _apply(request, operator)
    deadline = time.monotonic() + 30
    while made.code == "idempotency_request_in_progress" and time.monotonic() < deadline:
        await asyncio.sleep(0.2)  # another API process is applying for it right now
        made = await _apply(request, operator)
    if not made.ok:
        raise RuntimeError(f"demo shop: merchant not created ({made.status} {made.code})")
    return await _finish(request, operator, made.body["id"])


async def _apply(request: Request, operator: str) -> internal.Answer:
    return await internal.call(
        request,
        "POST",
        "/v1/merchants",
        token=operator,
        idempotency_key=MERCHANT_IDEMPOTENCY_KEY,
        body={
            "legal_name": SHOP_NAME,
            "website": "https://shop.example",
            "email": "ops@shop.example",
            "country": "US",
            "mcc": "5941",
            "default_currency": "USD",
            "settlement_account": {"account_number": "000123456789", "routing_number": "110000000"},
            "config": {
                "plans": ["pay_in_4", "monthly_6", "monthly_12"],
                "monthly_apr_bps": APR_BPS,
            },
        },
    )


async def _finish(request: Request, operator: str, merchant_id: str) -> DemoMerchant:
    deadline = time.monotonic() + 30
    while True:  # business verification runs in the worker, within seconds
        found = await internal.call(request, "GET", f"/v1/merchants/{merchant_id}", token=operator)
        if found.ok and found.body["status"] == "active":
            break
        if time.monotonic() > deadline:
            raise RuntimeError("demo shop: merchant not activated")
        await asyncio.sleep(0.2)
    secret = await internal.call(
        request, "POST", f"/v1/merchants/{merchant_id}/api_keys", token=operator
    )
    keys = await internal.call(
        request, "GET", f"/v1/merchants/{merchant_id}/publishable_keys", token=operator
    )
    live = [k for k in keys.body["data"] if k["revoked_at"] is None] if keys.ok else []
    if live:
        publishable = live[0]["key"]
    else:
        created = await internal.call(
            request,
            "POST",
            f"/v1/merchants/{merchant_id}/publishable_keys",
            token=operator,
            idempotency_key=f"sandbox-demo-shop-pk-{merchant_id}",
        )
        publishable = created.body["key"]
    return DemoMerchant(merchant_id, secret.body["secret"], publishable)


def _enabled(request: Request) -> bool:
    return runtime(request).settings.sandbox


@router.get("/sandbox/shop")
async def shop(request: Request) -> Response:
    if not _enabled(request):
        return not_found_page(request, None)
    merchant = await demo_merchant(request)
    return render(
        request,
        load(request),
        "shop.html",
        products=PRODUCTS,
        merchant=merchant,
        title=SHOP_NAME,
        shop_name=SHOP_NAME,
    )


@router.post("/sandbox/shop/checkout")
async def make_checkout(request: Request, product: str = "") -> Response:
    """The merchant's server: make the checkout with the secret key, hand back redirect_url."""
    chosen = next((p for p in PRODUCTS if p.slug == product), None)
    if not _enabled(request) or chosen is None:
        return JSONResponse({"error": "no such product"}, status_code=404)
    merchant = await demo_merchant(request)
    base = f"{request.url.scheme}://{request.headers.get('host', '')}"
    made = await internal.call(
        request,
        "POST",
        "/v1/checkouts",
        token=merchant.secret,
        body={
            "amount": chosen.price,
            "currency": "USD",
            "merchant_reference": f"demo-{chosen.slug}",
            "items": [
                {"name": chosen.name, "sku": chosen.slug, "quantity": 1, "unit_price": chosen.price}
            ],
            "success_url": f"{base}/sandbox/shop/thanks",
            "cancel_url": f"{base}/sandbox/shop",
        },
    )
    if not made.ok:
        return JSONResponse({"error": made.code}, status_code=502)
    return JSONResponse({"redirect_url": made.body["redirect_url"]})


@router.get("/sandbox/shop/thanks")
async def thanks(request: Request, checkout_id: str = "") -> Response:
    """The merchant's success page: it checks the checkout with its secret key and captures
    it (a real shop would capture when it ships)."""
    if not _enabled(request):
        return not_found_page(request, None)
    merchant = await demo_merchant(request)
    found = await internal.call(
        request, "GET", f"/v1/checkouts/{checkout_id}", token=merchant.secret
    )
    if not found.ok:
        return not_found_page(request, None)
    order = found.body
    if order["status"] == "authorized":
        captured = await internal.call(
            request,
            "POST",
            f"/v1/checkouts/{checkout_id}/capture",
            token=merchant.secret,
            idempotency_key=f"demo-capture-{checkout_id}",
        )
        if captured.ok:
            order = captured.body
    session = load(request)
    return render(
        request, session, "shop_thanks.html", order=order, title="Thank you", shop_name=SHOP_NAME
    )


@router.post("/sandbox/shop/dashboard")
async def dashboard(request: Request) -> Response:
    """Sandbox only: open the demo shop's merchant dashboard, signed in as its merchant on the
    server (its secret key never reaches the page)."""
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _enabled(request):
        return not_found_page(request, session)
    merchant = await demo_merchant(request)
    session.staff_sign_in("merchant", merchant.secret, merchant.id)
    return redirect(request, session, "/merchant/checkouts")
