"""Calls to the platform's own JSON API from a page, in-process: through the whole ASGI
application (the gateway's authentication, rate limits, idempotency keys and audit included),
exactly as a client over HTTP would, without a socket or a second path to the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from starlette.types import Message


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    raw: bytes = b""
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def code(self) -> str | None:
        if isinstance(self.body, dict):
            code = self.body.get("code")
            return code if isinstance(code, str) else None
        return None


async def call(
    request: Request,
    method: str,
    path: str,
    *,
    token: str | None = None,
    body: Any = None,
    query: dict[str, str] | None = None,
    idempotency_key: str | None = None,
) -> Answer:
    """Send one request to the API as the page's user (`token`), answer its status and JSON."""
    payload = json.dumps(body).encode() if body is not None else b""
    headers: list[tuple[bytes, bytes]] = [
        (b"host", request.headers.get("host", "localhost").encode("latin-1")),
        (b"accept", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
    ]
    if body is not None:
        headers.append((b"content-type", b"application/json"))
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    if idempotency_key is not None:
        headers.append((b"idempotency-key", idempotency_key.encode()))
    request_id = getattr(request.state, "request_id", None)
    if request_id:
        headers.append((b"x-request-id", str(request_id).encode()))
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": method,
        "scheme": request.url.scheme,
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": urlencode(query or {}).encode(),
        "headers": headers,
        "client": request.scope.get("client"),  # the per-address limits see the real client
        "server": request.scope.get("server"),
    }
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}
        return {"type": "http.disconnect"}

    status = 500
    content_type = ""
    chunks: list[bytes] = []

    async def send(message: Message) -> None:
        nonlocal status, content_type
        if message["type"] == "http.response.start":
            status = message["status"]
            for k, v in message.get("headers", []):
                if k.lower() == b"content-type":
                    content_type = v.decode("latin-1")
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await request.app(scope, receive, send)
    raw = b"".join(chunks)
    parsed = None
    if "json" in content_type and raw:
        try:
            parsed = json.loads(raw)
        except ValueError:
            parsed = None
    return Answer(status, parsed, raw, content_type)
