"""The gateway as one ASGI middleware: request ids, request-body limits, URLs PostgreSQL could
not store, principals, rate limits, idempotency, logs and metrics, in that order, before any
router sees the request. It is the outermost layer that reads anything of a request, so its
body limits (`gateway/body.py`) hold for everything inside it."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping
from contextvars import ContextVar
from typing import Any
from urllib.parse import unquote_to_bytes

from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bnpl.gateway.body import GuardedBody, payload_too_large_detail, too_large
from bnpl.gateway.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyStore,
    StoredResponse,
    current_claim,
    request_hash,
)
from bnpl.gateway.principals import (
    Anonymous,
    Consumer,
    CredentialResolvers,
    InvalidCredentials,
    Merchant,
    Operator,
    Principal,
)
from bnpl.gateway.ratelimit import RateLimiter, Verdict
from bnpl.kit.errors import FieldError, problem_body
from bnpl.kit.ids import new_id

log = logging.getLogger("bnpl.http")

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

# RED metrics per route: the histogram's `_count` is the request rate (by status: errors),
# its buckets the latency. `route` is the route template, never the raw path.
REQUEST_DURATION = Histogram(
    "bnpl_http_request_duration_seconds",
    "HTTP request duration, by route template, method and status",
    ["route", "method", "status"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# The children by label values, looked up without `labels()`'s lock and argument checks
# (the request path pays one dict lookup and one observe; docs/operations.md, "Metrics").
_durations: dict[tuple[str, str, int], Any] = {}
# Any other method is "other": a client must not be able to mint label values.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    if method not in _METHODS:
        method = "other"
    child = _durations.get((route, method, status))
    if child is None:
        child = _durations[(route, method, status)] = REQUEST_DURATION.labels(
            route, method, str(status)
        )
    child.observe(seconds)


_UNMETERED = ("/healthz", "/readyz", "/metrics", "/docs", "/openapi.json")

MAX_REQUEST_ID_LENGTH = 1024


def _request_id(sent: str) -> str:
    """The client's id if it is 1-1024 printable ASCII characters, else a new one: it is
    echoed in a header and stored in audit records, where nothing else may go."""
    if 0 < len(sent) <= MAX_REQUEST_ID_LENGTH and sent.isascii() and sent.isprintable():
        return sent
    return new_id("req")


def _nul_in_url(scope: Scope) -> str | None:
    """The part of the URL ("path" or "query") that holds a NUL character (raw or %00).

    PostgreSQL cannot store NUL in text; refusing it here, once, means no id or filter taken
    from the URL ever reaches a query with one.
    """
    if "\x00" in scope.get("path", ""):
        return "path"
    if b"\x00" in unquote_to_bytes(scope.get("query_string", b"")):
        return "query"
    return None


def _valid_idempotency_key(key: str) -> bool:
    # NUL is refused for the same reason as in URLs: the key is stored in a text column.
    return 1 <= len(key) <= MAX_KEY_LENGTH and "\x00" not in key


def _problem(
    status: int,
    code: str,
    detail: str,
    headers: dict[str, str] | None = None,
    errors: list[FieldError] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    body = json.dumps(problem_body(status, code, detail, errors)).encode()
    return status, {"content-type": "application/problem+json", **(headers or {})}, body


class GatewayMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        admin_token: str,
        resolvers: CredentialResolvers,
        limiter: Callable[[], RateLimiter],
        idempotency: Callable[[], IdempotencyStore],
        merchant_rule: str,
        consumer_rule: str,
        max_body_bytes: int = 1024 * 1024,
        body_timeout_s: float = 30.0,
        needs_credentials: Callable[[str, str], bool] = lambda method, path: False,
    ) -> None:
        self.app = app
        self.admin_token = admin_token
        self.resolvers = resolvers
        self.limiter = limiter
        self.idempotency = idempotency
        self.merchant_rule = merchant_rule
        self.consumer_rule = consumer_rule
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.needs_credentials = needs_credentials

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        request_id = _request_id(headers.get("x-request-id", ""))
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_holder = [500]
        started_response = [False]
        extra_headers: dict[str, str] = {"x-request-id": request_id}

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                started_response[0] = True
                status_holder[0] = message["status"]
                raw = list(message.get("headers", []))
                raw.extend((k.encode(), v.encode()) for k, v in extra_headers.items())
                message = {**message, "headers": raw}
            await send(message)

        try:
            await self._handle(scope, receive, send_with_headers, headers, extra_headers)
        except Exception:
            # Answer here rather than in Starlette's outermost error middleware, which sits
            # outside this one: so a 500 carries the request id and the rate-limit headers too.
            if started_response[0]:
                raise
            log.exception("unhandled error")
            await _respond(
                send_with_headers,
                *_problem(500, "internal_error", "Something went wrong on our side."),
            )
        finally:
            elapsed = time.perf_counter() - started
            path = scope.get("path", "")
            route = scope.get("route")
            # Label by route template only: raw paths (with ids) would be unbounded label values.
            route_name = getattr(route, "path", None) or (
                "unmatched" if status_holder[0] == 404 else "gateway"
            )
            if not path.startswith(_UNMETERED):
                observe_request(route_name, scope["method"], status_holder[0], elapsed)
                log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": path,
                        "status": status_holder[0],
                        "duration_ms": round(elapsed * 1000, 2),
                    },
                )
            request_id_var.reset(token)

    async def _handle(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        headers: dict[str, str],
        extra_headers: dict[str, str],
    ) -> None:
        if too_large(headers.get("content-length"), self.max_body_bytes):
            # Refused before a byte of the body is read; the connection closes, so the
            # rest is never read either.
            await _respond(
                send,
                *_problem(
                    413,
                    "payload_too_large",
                    payload_too_large_detail(self.max_body_bytes),
                    headers={"connection": "close"},
                ),
            )
            return

        answer = send

        async def refuse(status: int, code: str, detail: str) -> None:
            await _respond(answer, *_problem(status, code, detail, headers={"connection": "close"}))

        guarded = GuardedBody(
            receive,
            answer,
            max_bytes=self.max_body_bytes,
            timeout_s=self.body_timeout_s,
            refuse=refuse,
        )
        receive, send = guarded.receive, guarded.send

        part = _nul_in_url(scope)
        if part is not None:
            await _respond(
                send,
                *_problem(
                    400,
                    "validation_error",
                    f"The URL's {part} holds a NUL character.",
                    errors=[FieldError(part, "must not contain NUL characters")],
                ),
            )
            return

        principal = await self._resolve(headers.get("authorization"))
        state: MutableMapping[str, Any] = scope.setdefault("state", {})
        state["principal"] = principal
        state["request_id"] = extra_headers["x-request-id"]

        if isinstance(principal, Merchant) and principal.suspended:
            await _respond(
                send, *_problem(403, "merchant_suspended", "This merchant is suspended.")
            )
            return

        verdict = await self._rate_limit(principal)
        if verdict is not None:
            extra_headers.update(verdict.headers())
            if not verdict.allowed:
                await _respond(
                    send, *_problem(429, "rate_limited", "Too many requests; slow down.")
                )
                return

        key = headers.get("idempotency-key")
        # Bad credentials always end in a 401, and so do none on a route that needs them:
        # storing it would only let anyone without credentials fill the key store (and answer
        # the next such request 409 `idempotency_key_reused` instead of 401).
        if (
            scope["method"] != "POST"
            or key is None
            or isinstance(principal, InvalidCredentials)
            or (isinstance(principal, Anonymous) and self.needs_credentials("POST", scope["path"]))
        ):
            await self.app(scope, receive, send)
            return
        if not _valid_idempotency_key(key):
            await _respond(
                send,
                *_problem(
                    400,
                    "validation_error",
                    "Idempotency-Key must be 1 to 255 characters, without NUL.",
                    errors=[
                        FieldError("Idempotency-Key", "must be 1 to 255 characters, without NUL")
                    ],
                ),
            )
            return
        await self._idempotent(scope, receive, send, principal, key)

    async def _resolve(self, authorization: str | None) -> Principal:
        if not authorization:
            return Anonymous()
        scheme, _, credential = authorization.partition(" ")
        credential = credential.strip()
        if scheme.lower() != "bearer" or not credential:
            return InvalidCredentials()
        if hmac.compare_digest(credential.encode(), self.admin_token.encode()):
            return Operator()
        if credential.startswith("sk_"):
            if self.resolvers.merchant_key is not None:
                found = await self.resolvers.merchant_key(credential)
                if found is not None:
                    return found
            return InvalidCredentials()
        if self.resolvers.access_token is not None:
            consumer = await self.resolvers.access_token(credential)
            if consumer is not None:
                return consumer
        return InvalidCredentials()

    async def _rate_limit(self, principal: Principal) -> Verdict | None:
        """Count the request; a rate-limit store that is down lets traffic through (logged):
        losing the limiter must not take the payment API down with it."""
        try:
            if isinstance(principal, Merchant):
                return await self.limiter().hit(self.merchant_rule, f"key:{principal.key_id}")
            if isinstance(principal, Consumer):
                return await self.limiter().hit(
                    self.consumer_rule, f"consumer:{principal.consumer_id}"
                )
        except Exception:
            log.exception("rate limiter unavailable; request let through")
        return None

    async def _idempotent(
        self, scope: Scope, receive: Receive, send: Send, principal: Principal, key: str
    ) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client left, or the body was refused (413/408): nothing to claim
        owner = _key_owner(principal, scope["path"])
        store = self.idempotency()
        decision = await store.claim(owner, key, request_hash(scope["method"], scope["path"], body))
        if isinstance(decision, StoredResponse):
            ctype = "application/json"
            if decision.status >= 400:
                ctype = "application/problem+json"
            await _respond(
                send,
                decision.status,
                {"content-type": ctype, "idempotent-replayed": "true"},
                decision.body,
            )
            return
        if decision == "reused":
            await _respond(
                send,
                *_problem(
                    409,
                    "idempotency_key_reused",
                    "This Idempotency-Key was used with a different request.",
                ),
            )
            return
        if decision == "in_progress":
            await _respond(
                send,
                *_problem(
                    409,
                    "idempotency_request_in_progress",
                    "A request with this Idempotency-Key is still being processed.",
                ),
            )
            return

        claim = store.claim_for(owner, key)
        claim_token = current_claim.set(claim)
        captured: dict[str, Any] = {"status": 500, "body": bytearray()}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
            elif message["type"] == "http.response.body":
                captured["body"].extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, _replay(body, receive), capture)
        except BaseException:
            await store.release(claim)
            raise
        finally:
            current_claim.reset(claim_token)
        if claim.completed:
            return
        if captured["status"] >= 500 or captured["status"] in (401, 429):
            # Not processed (a failure, overload, a rate limit, or no credentials for a route
            # that needs them): the same key may be retried once the client has waited or
            # signed in, and must then really run. A stored 401 would also answer the next
            # credential-less request with the key 409 `idempotency_key_reused` instead of 401.
            await store.release(claim)
        else:
            # Answered without a business change (validation, conflicts): store the answer.
            await store.store(claim, captured["status"], bytes(captured["body"]))


def _key_owner(principal: Principal, path: str) -> str:
    """Whose Idempotency-Keys a request's key is among. Clients without credentials are not
    one principal: their keys are kept per path (sign-up, login, refresh), so that one
    client's key for a public route never collides with another's, or with a request to a
    route that needs credentials (answered 401 every time, never stored)."""
    if isinstance(principal, Anonymous):
        return "anonymous:" + hashlib.sha256(path.encode()).hexdigest()[:32]
    return principal.owner


async def _read_body(receive: Receive) -> bytes | None:
    """The whole body (bounded by the body guard), or None if it never arrived whole."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes, original: Receive) -> Callable[[], Awaitable[Message]]:
    """Hand the buffered body to the app once, then pass through (for disconnects)."""
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await original()

    return receive


async def _respond(send: Send, status: int, headers: dict[str, str], body: bytes) -> None:
    raw = [(k.encode(), v.encode()) for k, v in headers.items()]
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
