"""The operator dashboard (`/ops`): the live report with charts over time; a lookup that shows
the whole story of a consumer, merchant, checkout or plan (events, payments, ledger entries,
audit records); delinquent plans; dead-lettered events; failed webhooks; ledger and audit
verification.

The operator signs in with the operator token (API.md), typed once and then kept sealed in
the HttpOnly session cookie for 8 hours; every figure comes from the JSON API with it."""

from __future__ import annotations

import hmac
import re
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from bnpl.gateway import follow_sandbox_clock, runtime
from bnpl.web import internal
from bnpl.web.pages import checked_form, redirect, refused, render
from bnpl.web.session import Session, load

router = APIRouter(include_in_schema=False)

_ID = re.compile(r"^(cus|mer|chk|pln|pay|dec|evt)_[0-9A-Za-z]{1,64}$")
CHART_DAYS = 14


async def _call(request: Request, session: Session, path: str, **query: str) -> internal.Answer:
    return await internal.call(request, "GET", path, token=session.staff("operator"), query=query)


def _data(answer: internal.Answer) -> list[dict[str, Any]]:
    return list(answer.body["data"]) if answer.ok else []


def _signed_in(session: Session) -> bool:
    return session.staff("operator") is not None


def _page(request: Request, session: Session, template: str, **context: Any) -> Response:
    return render(request, session, template, 200, q=request.query_params.get("q", ""), **context)


@router.get("/ops/login")
async def login_page(request: Request) -> Response:
    return render(request, load(request), "ops_login.html", title="Operator sign-in")


@router.post("/ops/login")
async def login(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    token = str(form.get("token", "")).strip()
    expected = runtime(request).settings.admin_token
    if not token or not hmac.compare_digest(token.encode(), expected.encode()):
        return render(
            request,
            session,
            "ops_login.html",
            400,
            title="Operator sign-in",
            error="That is not the operator token.",
        )
    session.staff_sign_in("operator", token)
    return redirect(request, session, "/ops")


@router.post("/ops/logout")
async def logout(request: Request) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    session.staff_sign_out()
    return redirect(request, session, "/ops/login")


def _bars(values: list[tuple[date, int]], label: str) -> dict[str, Any]:
    """An SVG bar chart's geometry (drawn by the template, no script)."""
    top = max((v for _, v in values), default=0) or 1
    width, height, gap = 24, 100, 6
    bars = [
        {
            "x": i * (width + gap),
            "h": round(v * height / top),
            "y": height - round(v * height / top),
            "day": d,
            "value": v,
        }
        for i, (d, v) in enumerate(values)
    ]
    return {
        "label": label,
        "bars": bars,
        "width": len(values) * (width + gap),
        "height": height,
        "bar_width": width,
    }


@router.get("/ops")
async def report(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    await follow_sandbox_clock(request)
    today = runtime(request).clock.today()
    total = await _call(request, session, "/v1/reports/summary")
    if total.status in (401, 403):
        session.staff_sign_out()
        return redirect(request, session, "/ops/login")
    days = []
    for back in range(CHART_DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        start = datetime.combine(day, time(), tzinfo=UTC)
        figures = await _call(
            request,
            session,
            "/v1/reports/summary",
            **{"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()},
        )
        days.append((day, figures.body if figures.ok else {}))
    charts = [
        _bars([(d, int(f.get("authorized", 0))) for d, f in days], "Approvals per day"),
        _bars([(d, int(f.get("declined", 0))) for d, f in days], "Declines per day"),
        _bars([(d, int(f.get("gmv", 0))) for d, f in days], "GMV per day (USD)"),
    ]
    return _page(
        request,
        session,
        "ops_report.html",
        title="Operator",
        section="report",
        summary=total.body if total.ok else {},
        charts=charts,
        today=today,
    )


@router.get("/ops/lookup")
async def lookup(request: Request, q: str = "") -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    return await _lookup(request, session, q.strip())


async def _lookup(request: Request, session: Session, q: str, **shown: Any) -> Response:
    if not q:
        return _page(
            request, session, "ops_lookup.html", title="Lookup", section="lookup", kind=None
        )
    if not _ID.match(q):
        return _page(
            request,
            session,
            "ops_lookup.html",
            title="Lookup",
            section="lookup",
            kind=None,
            error="Enter an id: cus_, mer_, chk_, pln_, pay_, dec_ or evt_.",
        )
    kind = q[:3]
    paths = {
        "cus": f"/v1/consumers/{q}",
        "mer": f"/v1/merchants/{q}",
        "chk": f"/v1/checkouts/{q}",
        "pln": f"/v1/plans/{q}",
        "pay": f"/v1/payments/{q}",
        "dec": f"/v1/credit/decisions/{q}",
        "evt": f"/v1/events/{q}",
    }
    found = await _call(request, session, paths[kind])
    if not found.ok:
        return _page(
            request,
            session,
            "ops_lookup.html",
            title="Lookup",
            section="lookup",
            kind=None,
            error=f"Nothing found for {q}.",
        )
    story: dict[str, Any] = {
        "audit": _data(await _call(request, session, "/v1/audit", entity_id=q, limit="100")),
        "events": _data(await _call(request, session, "/v1/events", aggregate_id=q, limit="100")),
    }
    ledger_filter = {"cus": "consumer_id", "mer": "merchant_id"}.get(kind, "reference_id")
    story["ledger"] = _data(
        await _call(request, session, "/v1/ledger/entries", **{ledger_filter: q, "limit": "100"})
    )
    if kind == "pln":
        story["payments"] = _data(
            await _call(request, session, "/v1/payments", plan_id=q, limit="100")
        )
        # The requests that made and changed the plan are audited on its checkout, and each
        # payment on itself.
        related = [found.body["checkout_id"]] + [p["id"] for p in story["payments"]]
        for entity in related[:20]:
            story["audit"] += _data(
                await _call(request, session, "/v1/audit", entity_id=entity, limit="100")
            )
        story["audit"].sort(key=lambda a: a["at"])
    if kind == "cus":
        story["notifications"] = _data(
            await _call(request, session, "/v1/notifications", consumer_id=q, limit="100")
        )
    if kind == "mer":
        summary = await _call(request, session, "/v1/reports/summary", merchant_id=q)
        story["summary"] = summary.body if summary.ok else None
        story["api_keys"] = _data(
            await _call(request, session, f"/v1/merchants/{q}/api_keys", limit="100")
        )
        story["publishable_keys"] = _data(
            await _call(request, session, f"/v1/merchants/{q}/publishable_keys", limit="100")
        )
    if kind == "chk" and found.body.get("decision"):
        decision = await _call(
            request, session, f"/v1/credit/decisions/{found.body['decision']['id']}"
        )
        story["decision"] = decision.body if decision.ok else None
    if kind == "chk" and found.body.get("plan_id"):
        story["ledger"] += _data(
            await _call(
                request,
                session,
                "/v1/ledger/entries",
                reference_id=found.body["plan_id"],
                limit="100",
            )
        )
    return _page(
        request,
        session,
        "ops_lookup.html",
        title=f"Lookup {q}",
        section="lookup",
        kind=kind,
        entity=found.body,
        story=story,
        shown=shown,
    )


@router.get("/ops/delinquent")
async def delinquent(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    events = _data(await _call(request, session, "/v1/events", type="plan.delinquent", limit="100"))
    plans: list[dict[str, Any]] = []
    seen: set[str] = set()
    for event in reversed(events):  # newest first
        plan_id = str(event["data"].get("id") or event["data"].get("plan_id") or "")
        if not plan_id or plan_id in seen or len(plans) >= 50:
            continue
        seen.add(plan_id)
        plan = await _call(request, session, f"/v1/plans/{plan_id}")
        if plan.ok:
            plans.append({**plan.body, "delinquent_since": event["created_at"]})
    return _page(
        request,
        session,
        "ops_delinquent.html",
        title="Delinquent plans",
        section="delinquent",
        plans=plans,
    )


@router.get("/ops/dead_letters")
async def dead_letters(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    found = _data(await _call(request, session, "/v1/dead_letters", limit="100"))
    failures = _data(await _call(request, session, "/v1/webhook_failures", limit="100"))
    return _page(
        request,
        session,
        "ops_failures.html",
        title="Failures",
        section="failures",
        dead_letters=found,
        failures=failures,
    )


@router.get("/ops/verify")
async def verify(request: Request) -> Response:
    session = load(request)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    ledger = await _call(request, session, "/v1/ledger/verify")
    audit = await _call(request, session, "/v1/audit/verify")
    return _page(
        request,
        session,
        "ops_verify.html",
        title="Verification",
        section="verify",
        ledger=ledger.body if ledger.ok else None,
        audit=audit.body if audit.ok else None,
    )


_KEY_ACTIONS = {
    "api_keys": "/v1/merchants/{m}/api_keys",
    "publishable_keys": "/v1/merchants/{m}/publishable_keys",
}


@router.post("/ops/merchants/{merchant_id}/{kind}")
async def issue_key(request: Request, merchant_id: str, kind: str) -> Response:
    """Issue a merchant a secret key (shown on this answer only) or a publishable key."""
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    if kind not in _KEY_ACTIONS or not _ID.match(merchant_id):
        return redirect(request, session, "/ops/lookup")
    made = await internal.call(
        request,
        "POST",
        _KEY_ACTIONS[kind].format(m=merchant_id),
        token=session.staff("operator"),
        idempotency_key=str(form.get("idempotency_key", "")) or None,
    )
    if not made.ok:
        detail = made.body.get("detail") if isinstance(made.body, dict) else None
        return await _lookup(request, session, merchant_id, error=str(detail or "Refused."))
    return await _lookup(request, session, merchant_id, issued=made.body)


@router.post("/ops/merchants/{merchant_id}/api_keys/{key_id}/revoke")
async def revoke_key(request: Request, merchant_id: str, key_id: str) -> Response:
    session = load(request)
    form = await checked_form(request, session)
    if form is None:
        return refused(request, session)
    if not _signed_in(session):
        return redirect(request, session, "/ops/login")
    if _ID.match(merchant_id) and re.fullmatch(r"key_[0-9A-Za-z]{1,64}", key_id):
        await internal.call(
            request,
            "DELETE",
            f"/v1/merchants/{merchant_id}/api_keys/{key_id}",
            token=session.staff("operator"),
        )
    return redirect(request, session, f"/ops/lookup?q={merchant_id}")
