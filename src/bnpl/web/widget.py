"""The merchant widget at a stable, versioned path: `/widget/v1/bnpl.js` (with its stylesheet)
and the one thing it reads, `GET /widget/v1/offers?key=pk_test_...&amount=&currency=`: the
plans the merchant's real configuration offers for a price, and the promotional message.

The publishable key reads offers and nothing else (the gateway takes no `pk_` credential);
the answer is public (`Access-Control-Allow-Origin: *`), as the key itself is."""

from __future__ import annotations

from typing import Any, Final

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from bnpl import checkout, merchants
from bnpl.gateway import follow_sandbox_clock, runtime
from bnpl.kit.errors import problem_body
from bnpl.kit.money import MAX_AMOUNT, SUPPORTED_CURRENCIES
from bnpl.web import present
from bnpl.web.pages import static

router = APIRouter(include_in_schema=False)

_PUBLIC: Final = {"access-control-allow-origin": "*", "cache-control": "public, max-age=60"}


@router.get("/widget/v1/bnpl.js")
async def script() -> Response:
    return static("widget.js", cors=True)


@router.get("/widget/v1/bnpl.css")
async def stylesheet() -> Response:
    return static("widget.css", cors=True)


def _problem(status: int, code: str, detail: str) -> Response:
    return JSONResponse(
        problem_body(status, code, detail),
        status_code=status,
        media_type="application/problem+json",
        headers={"access-control-allow-origin": "*"},
    )


@router.get("/widget/v1/offers")
async def offers(
    request: Request, key: str = "", amount: str = "", currency: str = "USD"
) -> Response:
    if not amount.isdigit() or not 0 < int(amount) <= MAX_AMOUNT:
        return _problem(
            422, "validation_error", "amount must be a positive integer of minor units."
        )
    if currency not in SUPPORTED_CURRENCIES:
        return _problem(422, "unsupported_currency", f"{currency} is not supported.")
    rt = runtime(request)
    async with rt.db.connection() as conn:
        merchant_id = await merchants.publishable_key_merchant(conn, key)
        config = await merchants.merchant_config(conn, merchant_id) if merchant_id else None
    if config is None:
        return _problem(401, "unauthenticated", "Unknown or revoked publishable key.")
    value = int(amount)
    await follow_sandbox_clock(request)
    today = rt.clock.today()
    shown = [
        present.offer(o.plan, value, o.apr_bps, o.installment_amount, today)
        for o in checkout.plan_options(config, value)
    ]
    body: dict[str, Any] = {
        "merchant_name": config.legal_name,
        "amount": value,
        "currency": currency,
        "plans": [
            {
                "plan": o.plan,
                "installments": len(o.lines),
                "installment_amount": o.installment_amount,
                "apr_bps": o.apr_bps,
                "total": o.total,
            }
            for o in shown
        ],
        "message": present.promo_lines(shown, currency),
    }
    return JSONResponse(body, headers=_PUBLIC)
