"""People's sessions in the browser: one cookie, sealed with AES-256-GCM (the platform key),
HttpOnly, SameSite=Lax, Secure on https. It holds the CSRF token of the forms and, once the
person signs in, their API tokens: no page script ever sees a token, and no server-side store
is needed (any API process can read it).

Every form carries the CSRF token; a POST whose token does not match the cookie's, or whose
`Origin` is another site's, is refused (403)."""

from __future__ import annotations

import base64
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response

from bnpl.gateway import runtime
from bnpl.kit.crypto import DecryptionError, field_cipher
from bnpl.web import internal

COOKIE = "bnpl_session"
_AAD = "bnpl.web.session"
MAX_AGE_S = 30 * 24 * 3600  # the refresh token's lifetime
STAFF_MAX_AGE_S = 8 * 3600  # a dashboard sign-in lasts a working day


@dataclass
class Session:
    csrf: str
    access_token: str | None = None
    refresh_token: str | None = None
    consumer_id: str | None = None
    # A merchant's secret key or the operator's token, for the dashboards: sealed in the
    # cookie like everything here (no page script can read it), for STAFF_MAX_AGE_S.
    staff_kind: str | None = None  # "merchant" | "operator"
    staff_credential: str | None = None
    staff_id: str | None = None  # the merchant's id
    staff_since: int = 0
    changed: bool = False

    @property
    def signed_in(self) -> bool:
        return self.access_token is not None

    def sign_in(self, tokens: dict[str, Any], consumer_id: str) -> None:
        self.access_token = tokens["access_token"]
        self.refresh_token = tokens["refresh_token"]
        self.consumer_id = consumer_id
        self.csrf = secrets.token_urlsafe(24)  # a new session, a new token
        self.changed = True

    def sign_out(self) -> None:
        self.access_token = self.refresh_token = self.consumer_id = None
        self.changed = True

    def staff(self, kind: str) -> str | None:
        """The dashboard credential of `kind`, while it is fresh."""
        if self.staff_kind != kind or self.staff_credential is None:
            return None
        if time.time() - self.staff_since > STAFF_MAX_AGE_S:
            return None
        return self.staff_credential

    def staff_sign_in(self, kind: str, credential: str, staff_id: str | None = None) -> None:
        self.staff_kind, self.staff_credential, self.staff_id = kind, credential, staff_id
        self.staff_since = int(time.time())
        self.csrf = secrets.token_urlsafe(24)
        self.changed = True

    def staff_sign_out(self) -> None:
        self.staff_kind = self.staff_credential = self.staff_id = None
        self.staff_since = 0
        self.changed = True


def load(request: Request) -> Session:
    """The request's session; a new (anonymous) one when it has none or it does not open."""
    raw = request.cookies.get(COOKIE)
    if raw:
        try:
            sealed = base64.urlsafe_b64decode(raw.encode() + b"==")
            data = json.loads(
                field_cipher(runtime(request).settings.aes_key).open(sealed, aad=_AAD)
            )
            return Session(
                csrf=data["csrf"],
                access_token=data.get("access"),
                refresh_token=data.get("refresh"),
                consumer_id=data.get("consumer"),
                staff_kind=data.get("staff_kind"),
                staff_credential=data.get("staff"),
                staff_id=data.get("staff_id"),
                staff_since=int(data.get("staff_since", 0)),
            )
        except (ValueError, KeyError, DecryptionError):
            pass
    return Session(csrf=secrets.token_urlsafe(24), changed=True)


def save(request: Request, session: Session, response: Response) -> None:
    if not session.changed:
        return
    data = {
        "csrf": session.csrf,
        "access": session.access_token,
        "refresh": session.refresh_token,
        "consumer": session.consumer_id,
        "staff_kind": session.staff_kind,
        "staff": session.staff_credential,
        "staff_id": session.staff_id,
        "staff_since": session.staff_since,
    }
    sealed = field_cipher(runtime(request).settings.aes_key).seal(
        json.dumps(data).encode(), aad=_AAD
    )
    public_url = runtime(request).settings.public_url or ""
    response.set_cookie(
        COOKIE,
        base64.urlsafe_b64encode(sealed).decode().rstrip("="),
        max_age=MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https" or public_url.startswith("https:"),
    )


async def read_form(request: Request) -> dict[str, str]:
    """An `application/x-www-form-urlencoded` body (the only kind the pages send; the gateway
    has bounded its size), last value of each field."""
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return {}
    return dict(
        parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True)
    )


class CsrfRefused(Exception):
    pass


def check_csrf(request: Request, session: Session, form_token: object) -> None:
    """Refuse a form post that did not come from one of this platform's pages."""
    origin = request.headers.get("origin")
    if origin is not None and origin != "null":
        expected = f"{request.url.scheme}://{request.headers.get('host', '')}"
        if origin != expected:
            raise CsrfRefused()
    if not isinstance(form_token, str) or not hmac.compare_digest(
        form_token.encode(), session.csrf.encode()
    ):
        raise CsrfRefused()


async def api(
    request: Request,
    session: Session,
    method: str,
    path: str,
    **kwargs: Any,
) -> internal.Answer:
    """Call the API as the signed-in consumer; an expired access token is refreshed once
    (rotation: the new pair goes into the cookie), a refused refresh signs the person out."""
    answer = await internal.call(request, method, path, token=session.access_token, **kwargs)
    if answer.status != 401 or session.refresh_token is None:
        return answer
    renewed = await internal.call(
        request, "POST", "/v1/auth/refresh", body={"refresh_token": session.refresh_token}
    )
    if not renewed.ok:
        session.sign_out()
        return answer
    session.access_token = renewed.body["access_token"]
    session.refresh_token = renewed.body["refresh_token"]
    session.changed = True
    return await internal.call(request, method, path, token=session.access_token, **kwargs)
