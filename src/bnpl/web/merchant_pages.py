"""The merchant dashboard (`/merchant`): checkouts with capture, void and refund; settlements
with their CSV; webhook endpoints with the delivery log and redelivery; the widget's keys.

A merchant signs in with its credential of API.md, a secret key, typed once into the sign-in
form: the key is checked by the gateway's own resolver and then lives only sealed in the
HttpOnly session cookie (8 hours), never in the page. Every read and change is a call to the
JSON API with that key, so the dashboard can do exactly what the merchant's key can."""

from __future__ import annotations

import re
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response

from bnpl.gateway import runtime
from bnpl.web import internal, present
from bnpl.web.pages import SECURITY_HEADERS, checked_form, not_found_page, redirect, refused, render
from bnpl.web.session import Session, load

router = APIRouter(include_in_schema=False)

_ID = re.compile(r"^[a-z]{2,4}_[0-9A-Za-z]{1,64}$")
STATUSES = (
    "open",
    "authorized",
    "declined",
    "captured",
    "partially_refunded",
    "refunded",
    "voided",
    "expired",
)
NOTICES = {
    "captured": "Captured.",
    "voided": "Voided: the plan is canceled and the shopper's payments are refunded.",
    "refunded": "Refund made.",
    "redelivered": "The event is being sent again.",
    "deleted": "Endpoint deleted.",
}


async def _call(
    request: Request, session: Session, method: str, path: str, **kwargs: Any
) -> internal.Answer:
    return await internal.call(request, method, path, token=session.staff("merchant"), **kwargs)


def _signed_in(session: Session) -> bool:
    return session.staff("merchant") is not None


def _page(
    request: Request, session: Session, template: str, status: int = 200, **context: Any
) -> Response:
    return render(
        request,
        session,
        template,
        status,
        merchant_id=session.staff_id,
        notice=NOTICES.get(request.query_params.get("notice", "")),
        **context,
    )


@router.get("/merchant/login")
async def login_page(request: Request) -> Response:
    session = load(request)
    return render(request, session, "merchant_login.html", title="Merchant sign-in")


@router.post("/merchant/login")
async def login(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    secret = str(form.get("secret_key", "")).strip()
    resolve = runtime(request).resolvers.merchant_key
    merchant = await resolve(secret) if resolve and secret.startswith("sk_") else None
    if merchant is None or merchant.suspended:
        error = (
            "This merchant is suspended."
            if merchant is not None
            else "That is not a live secret key."
        )
        return render(
            request, session, "merchant_login.html", 400, title="Merchant sign-in", error=error
        )
    session.staff_sign_in("merchant", secret, merchant.merchant_id)
    return redirect(request, session, "/merchant/checkouts")


@router.post("/merchant/logout")
async def logout(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    session.staff_sign_out()
    return redirect(request, session, "/merchant/login")


@router.get("/merchant")
async def home(request: Request) -> Response:
    return redirect(request, None, "/merchant/checkouts")


@router.get("/merchant/checkouts")
async def checkouts(request: Request, status: str = "", starting_after: str = "") -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    query = {"limit": "50"}
    if status in STATUSES:
        query["status"] = status
    if _ID.match(starting_after):
        query["starting_after"] = starting_after
    found = await _call(request, session, "GET", "/v1/checkouts", query=query)
    if found.status == 401:
        session.staff_sign_out()
        return redirect(request, session, "/merchant/login")
    page = found.body if found.ok else {"data": [], "has_more": False, "next_cursor": None}
    return _page(
        request,
        session,
        "merchant_checkouts.html",
        title="Checkouts",
        section="checkouts",
        checkouts=page["data"],
        has_more=page["has_more"],
        next_cursor=page.get("next_cursor"),
        chosen_status=status,
        statuses=STATUSES,
    )


@router.get("/merchant/find")
async def find(request: Request, id: str = "") -> Response:
    """The checkouts list runs oldest first (the API's order); an id opens one directly."""
    return redirect(
        request,
        None,
        f"/merchant/checkouts/{id.strip()}" if _ID.match(id.strip()) else "/merchant/checkouts",
    )


@router.get("/merchant/checkouts/{checkout_id}")
async def checkout_page(request: Request, checkout_id: str, error: str = "") -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    if not _ID.match(checkout_id):
        return not_found_page(request, session)
    found = await _call(request, session, "GET", f"/v1/checkouts/{checkout_id}")
    if not found.ok:
        return not_found_page(request, session)
    refunds = await _call(
        request, session, "GET", f"/v1/checkouts/{checkout_id}/refunds", query={"limit": "100"}
    )
    return _page(
        request,
        session,
        "merchant_checkout.html",
        title="Checkout",
        section="checkouts",
        c=found.body,
        error=error or None,
        refunds=refunds.body["data"] if refunds.ok else [],
        idempotency_key=secrets.token_urlsafe(18),
    )


def _problem(answer: internal.Answer) -> str:
    if isinstance(answer.body, dict):
        return str(answer.body.get("detail") or answer.body.get("code") or "Refused.")
    return "Refused."


@router.post("/merchant/checkouts/{checkout_id}/{action}")
async def act(request: Request, checkout_id: str, action: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    if not _ID.match(checkout_id) or action not in ("capture", "void", "refunds"):
        return not_found_page(request, session)
    back = f"/merchant/checkouts/{checkout_id}"
    body: dict[str, Any] | None = None
    if action in ("capture", "refunds"):
        text = str(form.get("amount", "")).strip()
        amount = present.parse_amount(text) if text else None
        if text and not amount:
            return await checkout_page(request, checkout_id, error="Enter an amount like 12.50.")
        if action == "refunds":
            if not amount:
                return await checkout_page(
                    request, checkout_id, error="Enter the amount to refund."
                )
            body = {"amount": amount, "reason": str(form.get("reason", "")).strip() or None}
        elif amount:
            body = {"amount": amount}
    answer = await _call(
        request,
        session,
        "POST",
        f"/v1/checkouts/{checkout_id}/{action}",
        body=body,
        idempotency_key=str(form.get("idempotency_key") or secrets.token_urlsafe(18)),
    )
    if not answer.ok:
        return await checkout_page(request, checkout_id, error=_problem(answer))
    notice = {"capture": "captured", "void": "voided", "refunds": "refunded"}[action]
    return redirect(request, session, f"{back}?notice={notice}")


@router.get("/merchant/settlements")
async def settlements(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    found = await _call(request, session, "GET", "/v1/settlements", query={"limit": "100"})
    return _page(
        request,
        session,
        "merchant_settlements.html",
        title="Settlements",
        section="settlements",
        settlements=found.body["data"] if found.ok else [],
    )


@router.get("/merchant/settlements/{settlement_id}/report.csv")
async def settlement_report(request: Request, settlement_id: str) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    if not _ID.match(settlement_id):
        return not_found_page(request, session)
    found = await _call(request, session, "GET", f"/v1/settlements/{settlement_id}/report.csv")
    if not found.ok:
        return not_found_page(request, session)
    return Response(
        found.raw,
        media_type="text/csv",
        headers={
            **SECURITY_HEADERS,
            "content-disposition": f'attachment; filename="{settlement_id}.csv"',
        },
    )


@router.get("/merchant/webhooks")
async def webhooks(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    return await _webhooks(request, session)


async def _webhooks(
    request: Request, session: Session, status: int = 200, **context: Any
) -> Response:
    found = await _call(request, session, "GET", "/v1/webhook_endpoints", query={"limit": "100"})
    return _page(
        request,
        session,
        "merchant_webhooks.html",
        status,
        title="Webhooks",
        section="webhooks",
        endpoints=found.body["data"] if found.ok else [],
        **context,
    )


@router.post("/merchant/webhooks")
async def add_webhook(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    events = [e.strip() for e in str(form.get("events", "*")).split(",") if e.strip()] or ["*"]
    made = await _call(
        request,
        session,
        "POST",
        "/v1/webhook_endpoints",
        body={"url": str(form.get("url", "")).strip(), "events": events},
    )
    if not made.ok:
        return await _webhooks(request, session, 400, error=_problem(made))
    # The signing secret is shown this once, on this page (never stored by the page).
    return await _webhooks(request, session, created=made.body)


@router.post("/merchant/webhooks/{endpoint_id}/delete")
async def delete_webhook(request: Request, endpoint_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if _ID.match(endpoint_id):
        await _call(request, session, "DELETE", f"/v1/webhook_endpoints/{endpoint_id}")
    return redirect(request, session, "/merchant/webhooks?notice=deleted")


@router.get("/merchant/webhooks/{endpoint_id}")
async def deliveries(request: Request, endpoint_id: str) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    if not _ID.match(endpoint_id):
        return not_found_page(request, session)
    endpoint = await _call(request, session, "GET", f"/v1/webhook_endpoints/{endpoint_id}")
    if not endpoint.ok:
        return not_found_page(request, session)
    found = await _call(
        request,
        session,
        "GET",
        f"/v1/webhook_endpoints/{endpoint_id}/deliveries",
        query={"limit": "100"},
    )
    return _page(
        request,
        session,
        "merchant_deliveries.html",
        title="Deliveries",
        section="webhooks",
        endpoint=endpoint.body,
        deliveries=found.body["data"] if found.ok else [],
    )


@router.post("/merchant/events/{event_id}/redeliver")
async def redeliver(request: Request, event_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    back = str(form.get("back", "/merchant/webhooks"))
    back = back if back.startswith("/merchant/") else "/merchant/webhooks"
    if _ID.match(event_id):
        await _call(
            request,
            session,
            "POST",
            f"/v1/events/{event_id}/redeliver",
            idempotency_key=secrets.token_urlsafe(18),
        )
    return redirect(request, session, f"{back}?notice=redelivered")


@router.get("/merchant/keys")
async def keys(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/merchant/login")
    profile = await _call(request, session, "GET", f"/v1/merchants/{session.staff_id}")
    found = await _call(
        request, session, "GET", f"/v1/merchants/{session.staff_id}/publishable_keys"
    )
    base = (
        runtime(request).settings.public_url
        or f"{request.url.scheme}://{request.headers.get('host', '')}"
    )
    return _page(
        request,
        session,
        "merchant_keys.html",
        title="Keys and widget",
        section="keys",
        profile=profile.body if profile.ok else None,
        keys=found.body["data"] if found.ok else [],
        base=base.rstrip("/"),
    )
