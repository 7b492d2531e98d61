"""Rendering: the Jinja2 environment, the security headers every page carries, and the
static files (served from the package, no CDN: `static/VENDORED.md` lists what is vendored)."""

from __future__ import annotations

from importlib import resources
from typing import Any, Final

from fastapi import Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, PackageLoader, select_autoescape

from bnpl.gateway import runtime
from bnpl.web import present
from bnpl.web.session import CsrfRefused, Session, check_csrf, read_form, save

# No inline script or style anywhere: every script and stylesheet is a file of this platform.
CSP: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS: Final = {
    "content-security-policy": CSP,
    "x-content-type-options": "nosniff",
    # The hosted checkout's URL carries its token: never send it on to another site.
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}

env = Environment(
    loader=PackageLoader("bnpl.web", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
env.filters["money"] = lambda amount, currency: present.money(int(amount), str(currency))
env.filters["percent"] = lambda bps: present.percent(int(bps))
env.filters["day"] = present.day
env.filters["reason"] = present.reason
env.globals["plan_title"] = lambda plan: present.PLAN_TITLES.get(plan, plan)


def render(
    request: Request, session: Session | None, template: str, status: int = 200, **context: Any
) -> Response:
    context.setdefault("csrf", session.csrf if session else "")
    context.setdefault("signed_in", bool(session and session.signed_in))
    context["sandbox"] = runtime(request).settings.sandbox
    html = env.get_template(template).render(**context)
    response = HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
    if session is not None:
        save(request, session, response)
    return response


def redirect(request: Request, session: Session | None, url: str) -> Response:
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    if session is not None:
        save(request, session, response)
    return response


_TYPES: Final = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _load_static() -> dict[str, tuple[bytes, str]]:
    folder = resources.files("bnpl.web").joinpath("static")
    found = {}
    for item in folder.iterdir():
        suffix = "." + item.name.rpartition(".")[2]
        if item.is_file() and suffix in _TYPES:
            found[item.name] = (item.read_bytes(), _TYPES[suffix])
    return found


STATIC: Final = _load_static()


def static(name: str, *, cors: bool = False, max_age: int = 300) -> Response:
    found = STATIC.get(name)
    if found is None:
        return Response(status_code=404)
    body, media_type = found
    headers = {"cache-control": f"public, max-age={max_age}", "x-content-type-options": "nosniff"}
    if cors:
        headers["access-control-allow-origin"] = "*"
    return Response(body, media_type=media_type, headers=headers)


def not_found_page(request: Request, session: Session | None) -> Response:
    return render(
        request,
        session,
        "message.html",
        404,
        title="Not found",
        message="There is nothing here. The link may be incomplete or out of date.",
    )


async def checked_form(request: Request, session: Session) -> dict[str, Any] | None:
    """The posted form, or None if it does not carry this session's CSRF token."""
    form: dict[str, Any] = dict(await read_form(request))
    try:
        check_csrf(request, session, form.get("csrf_token"))
    except CsrfRefused:
        return None
    return form


def refused(request: Request, session: Session) -> Response:
    return render(
        request,
        session,
        "message.html",
        403,
        title="Please try again",
        message="This form is out of date. Go back, reload the page and try again.",
    )


__all__ = ["RedirectResponse", "not_found_page", "redirect", "render", "static"]
