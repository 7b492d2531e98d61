"""The HTTP server's own limits, for the processes that serve the API (`bnpl up`, `bnpl serve`).

uvicorn's httptools protocol never times out the reading of a request: its keep-alive timer
is cancelled by every `data_received`, so a client that trickles one header byte every few
seconds holds its connection (and a place among the server's connections) for as long as it
likes, and a connection that sends nothing at all is never closed. `GuardedHttpProtocol` adds:

- a deadline for the request head (request line and headers): complete within
  `header_timeout_s` of the connection opening, or of the first byte of a later request on a
  kept-alive connection, or the connection is closed;
- a bound on the head's size (`max_head_bytes`, else 431): httptools would buffer one header
  of any length;
- a backstop for the body: a body still incomplete `body_timeout_s` (plus a second's grace)
  after its head closes the connection. The gateway answers 408 at `body_timeout_s` when the
  app is the one waiting for it (`gateway/body.py`); this covers a body nobody reads;
- a limit on open connections and running requests (`max_connections`), answered 503
  `overloaded` in problem+json, where uvicorn's own `limit_concurrency` answers plain text.

An idle kept-alive connection is closed after uvicorn's `timeout_keep_alive`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, ClassVar

from uvicorn._types import ASGIReceiveCallable, ASGISendCallable, Scope
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from bnpl.config import Settings
from bnpl.kit.errors import problem_body
from bnpl.kit.ids import new_id

# Seconds the server waits past the body deadline before closing, so that the gateway's own
# 408 goes out first when the app is reading the body.
BODY_GRACE_S = 1.0


async def _overloaded(scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable) -> None:
    body = json.dumps(
        problem_body(503, "overloaded", "The server is handling too many connections; retry.")
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"1"),
                (b"x-request-id", new_id("req").encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _head_too_large(max_head_bytes: int) -> bytes:
    body = json.dumps(
        problem_body(
            431,
            "headers_too_large",
            f"The request line and headers are longer than {max_head_bytes} bytes.",
        )
    ).encode()
    head = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: application/problem+json\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"x-request-id: " + new_id("req").encode() + b"\r\n"
        b"connection: close\r\n\r\n"
    )
    return head + body


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with read deadlines, a head-size bound and a problem+json
    connection limit. Configured by subclassing (`protocol_for`)."""

    header_timeout_s: ClassVar[float] = 10.0
    body_timeout_s: ClassVar[float] = 30.0
    max_head_bytes: ClassVar[int] = 64 * 1024
    max_connections: ClassVar[int | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline: asyncio.TimerHandle | None = None
        self._head_open = False  # a request head has begun and is not complete
        self._heads_completed = 0
        self._head_bytes = 0

    # Deadlines -----------------------------------------------------------------------------

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.close()

    # Connection events ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_timeout_s)  # the first request's head, from the connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        inside_head, completed = self._head_open, self._heads_completed
        super().data_received(data)
        # Count the chunks that lie wholly inside one head (the parser reports where a head
        # begins and ends, not at which byte): a head is bounded to the limit plus one chunk.
        if inside_head and self._head_open and self._heads_completed == completed:
            self._head_bytes += len(data)
            if self._head_bytes > self.max_head_bytes and not self.transport.is_closing():
                self.transport.write(_head_too_large(self.max_head_bytes))
                self.transport.close()

    # Parser callbacks ----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_open, self._head_bytes = True, 0
        if self._deadline is None:
            self._arm(self.header_timeout_s)  # a later request on a kept-alive connection

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._heads_completed += 1
        self._disarm()
        limit = self.max_connections
        if limit is not None and (len(self.connections) > limit or len(self.tasks) >= limit):
            app, self.app = self.app, _overloaded
            try:
                super().on_headers_complete()
            finally:
                self.app = app
        else:
            super().on_headers_complete()
        if not self.pipeline:  # a queued (pipelined) request is not read until its turn
            self._arm(self.body_timeout_s + BODY_GRACE_S)

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def protocol_for(settings: Settings) -> type[GuardedHttpProtocol]:
    """The protocol class with this process's limits."""
    return type(
        "BnplHttpProtocol",
        (GuardedHttpProtocol,),
        {
            "header_timeout_s": settings.http_header_timeout_s,
            "body_timeout_s": settings.http_body_timeout_s,
            "max_head_bytes": settings.http_max_head_bytes,
            "max_connections": settings.http_max_connections,
        },
    )


class SharedPortHttpProtocol(GuardedHttpProtocol):
    """The protocol of `bnpl serve --workers N`: uvicorn hands its processes the protocol by
    import path, so the class is a module's, and each process sets its limits from its own
    settings (`configure_shared_port_protocol`, called by the app factory)."""


def configure_shared_port_protocol(settings: Settings) -> None:
    limits = protocol_for(settings)
    for name in ("header_timeout_s", "body_timeout_s", "max_head_bytes", "max_connections"):
        setattr(SharedPortHttpProtocol, name, getattr(limits, name))


def server_options(settings: Settings, *, processes: int = 1) -> dict[str, Any]:
    """uvicorn options for the API: the guarded protocol, keep-alive, and no proxy headers
    (uvicorn would believe X-Forwarded-For from loopback by default; the gateway decides
    which proxies to trust, `BNPL_TRUSTED_PROXIES`)."""
    shared = "bnpl.gateway.server:SharedPortHttpProtocol"
    return {
        "http": protocol_for(settings) if processes == 1 else shared,
        "timeout_keep_alive": settings.http_keep_alive_s,
        "proxy_headers": False,
    }
