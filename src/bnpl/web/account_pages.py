"""The consumer's account: plans with their schedules and statuses, paying the next
installment or paying off, the autopay card, payment history and notifications. Every change
is a call to the JSON API as the signed-in consumer."""

from __future__ import annotations

import re
import secrets

from fastapi import APIRouter, Request, Response

from bnpl import installments
from bnpl.gateway import follow_sandbox_clock, runtime
from bnpl.web.checkout_pages import TEST_CARDS, add_payment_method, sign_in, sign_out
from bnpl.web.pages import checked_form, not_found_page, redirect, refused, render
from bnpl.web.session import api, load

router = APIRouter(include_in_schema=False)

_PLAN_ID = re.compile(r"^pln_[0-9A-Za-z]{1,64}$")
NOTICES = {
    "paid": "Thank you: your payment went through.",
    "payment_failed": "Your card declined the payment. Try another card.",
    "autopay": "Autopay now uses the card you chose.",
    "card": "Your card is saved.",
}


@router.get("/account/login")
async def login_page(request: Request) -> Response:
    session = load(request)
    return render(request, session, "account_login.html", title="Log in", form={})


@router.post("/account/login")
async def login(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    error = await sign_in(
        request, session, str(form.get("email", "")), str(form.get("password", ""))
    )
    if error:
        return render(
            request,
            session,
            "account_login.html",
            400,
            title="Log in",
            error=error,
            form={"email": form.get("email", "")},
        )
    return redirect(request, session, "/account")


@router.post("/account/logout")
async def logout(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    await sign_out(request, session)
    return redirect(request, session, "/account/login")


@router.get("/account")
async def overview(request: Request) -> Response:
    session = load(request)
    if not session.signed_in:
        return redirect(request, session, "/account/login")
    me = await api(request, session, "GET", "/v1/me")
    plans = await api(request, session, "GET", "/v1/me/plans", query={"limit": "100"})
    if not me.ok or not plans.ok:
        return redirect(request, session, "/account/login")
    return render(
        request,
        session,
        "account.html",
        title="Your plans",
        me=me.body,
        plans=plans.body["data"],
        section="plans",
    )


@router.get("/account/plans/{plan_id}")
async def plan_page(request: Request, plan_id: str, notice: str = "") -> Response:
    session = load(request)
    if not session.signed_in:
        return redirect(request, session, "/account/login")
    if not _PLAN_ID.match(plan_id):
        return not_found_page(request, session)
    plan = await api(request, session, "GET", f"/v1/plans/{plan_id}")
    if not plan.ok:
        return not_found_page(request, session)
    paid = await api(
        request, session, "GET", "/v1/payments", query={"plan_id": plan_id, "limit": "100"}
    )
    cards = await api(request, session, "GET", "/v1/me/payment_methods", query={"limit": "100"})
    await follow_sandbox_clock(request)
    rt = runtime(request)
    async with rt.db.connection() as conn:  # the API showed this consumer the plan above
        quote = await installments.payoff_quote(conn, plan_id, rt.clock.today())
    return render(
        request,
        session,
        "account_plan.html",
        title="Your plan",
        plan=plan.body,
        payments=paid.body["data"] if paid.ok else [],
        methods=cards.body["data"] if cards.ok else [],
        quote=quote,
        notice=NOTICES.get(notice),
        failed=notice == "payment_failed",
        idempotency_key=secrets.token_urlsafe(18),
        test_cards=TEST_CARDS,
        section="plans",
    )


@router.post("/account/plans/{plan_id}/payments")
async def pay(request: Request, plan_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _PLAN_ID.match(plan_id):
        return not_found_page(request, session)
    kind = "payoff" if form.get("kind") == "payoff" else "next_installment"
    answer = await api(
        request,
        session,
        "POST",
        f"/v1/plans/{plan_id}/payments",
        body={"kind": kind, "payment_method_id": str(form.get("payment_method_id", ""))},
        idempotency_key=str(form.get("idempotency_key") or secrets.token_urlsafe(18)),
    )
    ok = answer.ok and answer.body.get("status") == "succeeded"
    return redirect(
        request, session, f"/account/plans/{plan_id}?notice={'paid' if ok else 'payment_failed'}"
    )


@router.post("/account/plans/{plan_id}/payment_method")
async def autopay(request: Request, plan_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _PLAN_ID.match(plan_id):
        return not_found_page(request, session)
    await api(
        request,
        session,
        "PUT",
        f"/v1/plans/{plan_id}/payment_method",
        body={"payment_method_id": str(form.get("payment_method_id", ""))},
    )
    return redirect(request, session, f"/account/plans/{plan_id}?notice=autopay")


@router.post("/account/cards")
async def add_card(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    back = str(form.get("back", "/account"))
    back = back if back.startswith("/account") else "/account"
    _, error = await add_payment_method(request, session, form)
    if error:
        return render(
            request,
            session,
            "message.html",
            400,
            title="Card not saved",
            message=error,
            link=back,
            link_text="Back",
        )
    return redirect(request, session, back + ("&" if "?" in back else "?") + "notice=card")


@router.get("/account/notifications")
async def notifications(request: Request) -> Response:
    session = load(request)
    if not session.signed_in:
        return redirect(request, session, "/account/login")
    found = await api(request, session, "GET", "/v1/me/notifications", query={"limit": "100"})
    return render(
        request,
        session,
        "account_notifications.html",
        title="Notifications",
        notifications=found.body["data"] if found.ok else [],
        section="notifications",
    )
