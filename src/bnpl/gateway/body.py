"""Request bodies: at most `max_bytes`, and complete within `timeout_s` of the request's start.

The gateway guards `receive` before anything reads a body (its own idempotency buffer,
FastAPI), so nothing in the process ever holds more than `max_bytes` of one request:

- a `Content-Length` over the limit is answered 413 before a byte of the body is read
  (`too_large`, called by the gateway first thing);
- a streamed (chunked) body stops being read as soon as it passes the limit: 413;
- a body still incomplete at its deadline is answered 408 (slow clients; the HTTP server
  times out a slow request head, see `gateway/server.py`).

A refusal answers at once with `Connection: close`, since the rest of the body is never read;
the app, still waiting for its body, is then told that the client has gone (`http.disconnect`)
and whatever it would answer is dropped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.types import Message, Receive, Send

# (status, code, detail) -> the problem answer, sent through the gateway's `send`.
Refusal = Callable[[int, str, str], Awaitable[None]]

_DISCONNECT: Message = {"type": "http.disconnect"}


def too_large(content_length: str | None, max_bytes: int) -> bool:
    """Does the declared Content-Length already pass the limit?"""
    if content_length is None:
        return False
    value = content_length.strip()
    return value.isascii() and value.isdigit() and int(value) > max_bytes


def payload_too_large_detail(max_bytes: int) -> str:
    return f"The request body is larger than {max_bytes} bytes."


class GuardedBody:
    """`receive` and `send` of one request, with the body's size and time limits enforced."""

    def __init__(
        self,
        receive: Receive,
        send: Send,
        *,
        max_bytes: int,
        timeout_s: float,
        refuse: Refusal,
    ) -> None:
        self._receive = receive
        self._send = send
        self._refuse_with = refuse
        self.max_bytes = max_bytes
        self._deadline = asyncio.get_running_loop().time() + timeout_s
        self._received = 0
        self._complete = False
        self._answer_started = False
        self.refused = False  # a 413 or 408 has been answered (or the body was cut off)

    async def receive(self) -> Message:
        if self.refused:
            return _DISCONNECT
        if self._complete:
            # The body is in: later calls only wait for a disconnect, with no deadline.
            return await self._receive()
        remaining = self._deadline - asyncio.get_running_loop().time()
        try:
            async with asyncio.timeout(max(remaining, 0.0)):
                message = await self._receive()
        except TimeoutError:
            await self._refuse(408, "request_timeout", "The request body took too long to send.")
            return _DISCONNECT
        if message["type"] != "http.request":
            return message
        self._received += len(message.get("body", b""))
        if self._received > self.max_bytes:
            await self._refuse(413, "payload_too_large", payload_too_large_detail(self.max_bytes))
            return _DISCONNECT
        if not message.get("more_body", False):
            self._complete = True
        return message

    async def send(self, message: Message) -> None:
        if self.refused:
            return  # the refusal is the answer
        if message["type"] == "http.response.start":
            self._answer_started = True
        await self._send(message)

    async def _refuse(self, status: int, code: str, detail: str) -> None:
        self.refused = True
        if not self._answer_started:
            await self._refuse_with(status, code, detail)
