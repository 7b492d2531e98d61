"""The hosted checkout (`redirect_url`): the shopper signs in or up, adds a card, sees every
plan on offer with its exact schedule, confirms, and goes back to the merchant.

GET renders; each form posts to its own route, which calls the JSON API and redirects
(post/redirect/get), so a reload never sends anything twice. The confirmation carries an
`Idempotency-Key` drawn when the page was rendered: a double click confirms once."""

from __future__ import annotations

import asyncio
import re
import secrets
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response

from bnpl import checkout
from bnpl.gateway import follow_sandbox_clock, runtime
from bnpl.web import internal, present
from bnpl.web.pages import checked_form, not_found_page, redirect, refused, render
from bnpl.web.session import Session, api, load

router = APIRouter(include_in_schema=False)

_CHECKOUT_ID = re.compile(r"^chk_[0-9A-Za-z]{1,64}$")
KYC_WAIT_S = 8.0  # how long a sign-up waits for identity verification before showing the page

TEST_CARDS = [
    ("4242424242424242", "every charge succeeds"),
    ("4000000000000002", "every charge is declined"),
    ("4000000000009995", "insufficient funds"),
]


async def _hosted(request: Request, checkout_id: str, token: str) -> checkout.HostedCheckout | None:
    if not _CHECKOUT_ID.match(checkout_id) or not token:
        return None
    if not checkout.hosted_token_valid(runtime(request).settings.aes_key, checkout_id, token):
        return None
    async with runtime(request).db.connection() as conn:
        return await checkout.hosted_checkout(conn, checkout_id)


def _page_url(checkout_id: str, token: str, **params: str) -> str:
    return f"/checkout/{checkout_id}?" + urlencode({"token": token, **params})


def _with_checkout_id(url: str, checkout_id: str) -> str:
    """The merchant's URL with `checkout_id=` added, so its page knows which checkout."""
    parts = urlsplit(url)
    query = [*parse_qsl(parts.query, keep_blank_values=True), ("checkout_id", checkout_id)]
    return urlunsplit(parts._replace(query=urlencode(query)))


def _offers(request: Request, view: checkout.HostedCheckout) -> list[present.Offer]:
    today = runtime(request).clock.today()
    return [
        present.offer(o.plan, view.checkout.amount, o.apr_bps, o.installment_amount, today)
        for o in view.options
    ]


@router.get("/checkout/{checkout_id}")
async def checkout_page(request: Request, checkout_id: str, token: str = "") -> Response:
    session = load(request)
    view = await _hosted(request, checkout_id, token)
    if view is None:
        return not_found_page(request, session)
    await follow_sandbox_clock(request)
    return await _render(request, session, view, token)


async def _render(
    request: Request,
    session: Session,
    view: checkout.HostedCheckout,
    token: str,
    *,
    status: int = 200,
    error: str | None = None,
    form: dict[str, Any] | None = None,
) -> Response:
    c = view.checkout
    context: dict[str, Any] = {
        "c": c,
        "merchant": view.merchant_name,
        "token": token,
        "error": error,
        "form": form or {},
        "cancel_url": present.web_url(c.cancel_url),
        "success_url": present.web_url(c.success_url),
        "test_cards": TEST_CARDS,
        "mine": session.signed_in and session.consumer_id == c.consumer_id,
        "step": request.query_params.get("step", ""),
    }
    public = c.status.public
    if public != "open":
        return render(request, session, "checkout_closed.html", status, **context, public=public)
    context["offers"] = _offers(request, view)
    if not session.signed_in:
        return render(request, session, "checkout.html", status, **context, me=None)
    me = await api(request, session, "GET", "/v1/me")
    if not me.ok:
        session.sign_out()
        return render(request, session, "checkout.html", status, **context, me=None)
    cards = await api(request, session, "GET", "/v1/me/payment_methods", query={"limit": "100"})
    methods = cards.body["data"] if cards.ok else []
    chosen = request.query_params.get("pm") or (methods[-1]["id"] if methods else None)
    return render(
        request,
        session,
        "checkout.html",
        status,
        **context,
        me=me.body,
        methods=methods,
        chosen=chosen,
        chosen_plan=(form or {}).get("plan") or request.query_params.get("plan"),
        idempotency_key=secrets.token_urlsafe(18),
    )


@router.post("/checkout/{checkout_id}/login")
async def login(request: Request, checkout_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    token = str(form.get("token", ""))
    view = await _hosted(request, checkout_id, token)
    if view is None:
        return not_found_page(request, session)
    error = await sign_in(
        request, session, str(form.get("email", "")), str(form.get("password", ""))
    )
    if error:
        return await _render(
            request,
            session,
            view,
            token,
            status=400,
            error=error,
            form={"email": form.get("email", "")},
        )
    return redirect(request, session, _page_url(checkout_id, token))


async def sign_in(request: Request, session: Session, email: str, password: str) -> str | None:
    """Log in through the API; an error message for the person, or None once signed in."""
    answer = await internal.call(
        request, "POST", "/v1/auth/login", body={"email": email, "password": password}
    )
    if answer.status == 429:
        return "Too many attempts. Wait a minute, then try again."
    if not answer.ok:
        return "That email and password do not match an account."
    me = await internal.call(request, "GET", "/v1/me", token=answer.body["access_token"])
    session.sign_in(answer.body, me.body["id"] if me.ok else "")
    return None


SIGN_UP_FIELDS = (
    "email",
    "phone",
    "first_name",
    "last_name",
    "date_of_birth",
    "line1",
    "city",
    "region",
    "postal_code",
)


@router.post("/checkout/{checkout_id}/signup")
async def signup(request: Request, checkout_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    token = str(form.get("token", ""))
    view = await _hosted(request, checkout_id, token)
    if view is None:
        return not_found_page(request, session)
    error = await sign_up(request, session, form)
    if error:
        kept = {k: form.get(k, "") for k in SIGN_UP_FIELDS}
        return await _render(
            request, session, view, token, status=400, error=error, form={**kept, "signup": True}
        )
    return redirect(request, session, _page_url(checkout_id, token))


async def sign_up(request: Request, session: Session, form: dict[str, Any]) -> str | None:
    """Create the account, sign in, and give identity verification a few seconds."""
    email, password = str(form.get("email", "")).strip(), str(form.get("password", ""))
    body = {
        "email": email,
        "phone": str(form.get("phone", "")).strip() or None,
        "password": password,
        "first_name": str(form.get("first_name", "")).strip(),
        "last_name": str(form.get("last_name", "")).strip(),
        "date_of_birth": str(form.get("date_of_birth", "")).strip(),
        "address": {
            "line1": str(form.get("line1", "")).strip(),
            "city": str(form.get("city", "")).strip(),
            "region": str(form.get("region", "")).strip(),
            "postal_code": str(form.get("postal_code", "")).strip(),
            "country": "US",
        },
    }
    created = await internal.call(request, "POST", "/v1/consumers", body=body)
    if not created.ok:
        return _problem_words(created)
    error = await sign_in(request, session, email, password)
    if error:
        return error
    deadline = time.monotonic() + KYC_WAIT_S
    while time.monotonic() < deadline:
        me = await api(request, session, "GET", "/v1/me")
        if not me.ok or me.body.get("kyc_status") != "pending":
            break
        await asyncio.sleep(0.2)
    return None


def _problem_words(answer: internal.Answer) -> str:
    code = answer.code
    if code == "email_taken":
        return "An account with this email already exists. Log in instead."
    if code == "weak_password":
        return "Choose a password of at least 10 characters."
    if code == "rate_limited":
        return "Too many attempts. Wait a minute, then try again."
    errors = answer.body.get("errors") if isinstance(answer.body, dict) else None
    if errors:
        fields = ", ".join(
            sorted({str(e.get("field", "")).split(".")[-1].replace("_", " ") for e in errors})
        )
        return f"Please check: {fields}."
    detail = answer.body.get("detail") if isinstance(answer.body, dict) else None
    return str(detail or "Something went wrong. Please try again.")


@router.post("/checkout/{checkout_id}/cards")
async def add_card(request: Request, checkout_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    token = str(form.get("token", ""))
    view = await _hosted(request, checkout_id, token)
    if view is None:
        return not_found_page(request, session)
    if not session.signed_in:
        return redirect(request, session, _page_url(checkout_id, token))
    answer, error = await add_payment_method(request, session, form)
    if error:
        return await _render(request, session, view, token, status=400, error=error)
    return redirect(request, session, _page_url(checkout_id, token, pm=answer.body["id"]))


async def add_payment_method(
    request: Request, session: Session, form: dict[str, Any]
) -> tuple[internal.Answer, str | None]:
    number = re.sub(r"[\s-]", "", str(form.get("number", "")))
    expiry = re.match(r"^\s*(\d{1,2})\s*/\s*(\d{2,4})\s*$", str(form.get("expiry", "")))
    if expiry is None:
        return internal.Answer(422, None), "Enter the expiry date as MM/YY."
    month, year = int(expiry.group(1)), int(expiry.group(2))
    year = year + 2000 if year < 100 else year
    answer = await api(
        request,
        session,
        "POST",
        "/v1/me/payment_methods",
        body={
            "type": "card",
            "card": {
                "number": number,
                "exp_month": month,
                "exp_year": year,
                "cvc": str(form.get("cvc", "")).strip(),
            },
        },
    )
    if answer.ok:
        return answer, None
    if answer.code == "invalid_card":
        return answer, "That card number or expiry date is not valid."
    return answer, _problem_words(answer)


@router.post("/checkout/{checkout_id}/confirm")
async def confirm(request: Request, checkout_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    token = str(form.get("token", ""))
    view = await _hosted(request, checkout_id, token)
    if view is None:
        return not_found_page(request, session)
    if not session.signed_in:
        return redirect(request, session, _page_url(checkout_id, token))
    plan, method = form.get("plan"), form.get("payment_method_id")
    if not plan or not method:
        return await _render(
            request, session, view, token, status=400, error="Choose a plan and a card.", form=form
        )
    answer = await api(
        request,
        session,
        "POST",
        f"/v1/checkouts/{checkout_id}/confirm",
        body={"plan": str(plan), "payment_method_id": str(method)},
        idempotency_key=str(form.get("idempotency_key") or secrets.token_urlsafe(18)),
    )
    if answer.ok and answer.body["status"] == "authorized":
        success = present.web_url(view.checkout.success_url)
        if success:
            return redirect(request, session, _with_checkout_id(success, checkout_id))
    if answer.ok or answer.code in ("checkout_not_open", "payment_processing"):
        return redirect(request, session, _page_url(checkout_id, token))
    return await _render(
        request, session, view, token, status=400, error=_problem_words(answer), form=form
    )


@router.post("/checkout/{checkout_id}/logout")
async def logout(request: Request, checkout_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    await sign_out(request, session)
    return redirect(request, session, _page_url(checkout_id, str(form.get("token", ""))))


async def sign_out(request: Request, session: Session) -> None:
    if session.signed_in:
        await api(request, session, "POST", "/v1/auth/logout")
    session.sign_out()
