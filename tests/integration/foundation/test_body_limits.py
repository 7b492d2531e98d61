"""Request bodies are bounded (`BNPL_MAX_BODY_BYTES`, 1 MiB by default) before anything reads
them: a Content-Length over the limit is answered 413 `payload_too_large` without reading a
byte, a streamed body is cut off as soon as it passes the limit, and neither the idempotency
buffer nor FastAPI ever holds more."""

from __future__ import annotations

import json
import secrets
from collections.abc import AsyncIterator
from typing import Any

import httpx
from fastapi import FastAPI

from bnpl.config import Settings
from bnpl.runtime import Runtime
from tests.support import assert_problem

MiB = 1024 * 1024
CHUNK = 64 * 1024


def test_the_default_limit_is_one_mebibyte() -> None:
    assert Settings().max_body_bytes == MiB


class Exchange:
    """One request played straight into the ASGI app: what it read, what it answered."""

    def __init__(self, body_bytes: int) -> None:
        self.body_bytes = body_bytes
        self.handed = 0  # body bytes the app asked for and got
        self.receives = 0
        self.messages: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        self.receives += 1
        if self.handed >= self.body_bytes:
            return {"type": "http.disconnect"}
        piece = min(CHUNK, self.body_bytes - self.handed)
        self.handed += piece
        return {
            "type": "http.request",
            "body": b"x" * piece,
            "more_body": self.handed < self.body_bytes,
        }

    async def send(self, message: dict[str, Any]) -> None:
        self.messages.append(message)

    @property
    def status(self) -> int:
        status: int = self.messages[0]["status"]
        return status

    @property
    def headers(self) -> dict[str, str]:
        return {k.decode(): v.decode() for k, v in self.messages[0]["headers"]}

    @property
    def body(self) -> dict[str, Any]:
        raw = b"".join(m.get("body", b"") for m in self.messages[1:])
        parsed: dict[str, Any] = json.loads(raw)
        return parsed


def scope(path: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 40000),
        "server": ("bnpl.test", 80),
    }


def assert_payload_too_large(exchange: Exchange) -> None:
    assert exchange.status == 413, exchange.messages
    assert exchange.headers["content-type"] == "application/problem+json"
    assert exchange.headers["connection"] == "close"
    assert exchange.headers["x-request-id"]
    body = exchange.body
    assert (body["status"], body["code"]) == (413, "payload_too_large")


async def test_a_content_length_over_the_limit_is_refused_unread(app: FastAPI) -> None:
    exchange = Exchange(100 * MiB)
    headers = {"content-type": "application/json", "content-length": str(100 * MiB)}
    await app(scope("/v1/auth/login", headers), exchange.receive, exchange.send)
    assert_payload_too_large(exchange)
    assert exchange.receives == 0  # not a byte of the body was read


async def test_a_streamed_body_is_cut_off_at_the_limit(app: FastAPI) -> None:
    exchange = Exchange(16 * MiB)
    headers = {"content-type": "application/json", "transfer-encoding": "chunked"}
    await app(scope("/v1/auth/login", headers), exchange.receive, exchange.send)
    assert_payload_too_large(exchange)
    # Reading stopped at the first chunk past the limit.
    assert MiB < exchange.handed <= MiB + CHUNK


async def test_a_body_at_the_limit_goes_through(app: FastAPI) -> None:
    exchange = Exchange(MiB)
    headers = {"content-type": "application/json", "content-length": str(MiB)}
    await app(scope("/v1/auth/login", headers), exchange.receive, exchange.send)
    assert exchange.status == 400  # read whole, and not JSON
    assert exchange.body["code"] == "validation_error"
    assert exchange.handed == MiB


async def stream(total: int) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b" " * CHUNK
        sent += CHUNK


async def test_an_idempotent_request_over_the_limit_stores_nothing(
    client: httpx.AsyncClient, rt: Runtime
) -> None:
    for content in (b" " * (2 * MiB), stream(8 * MiB)):
        key = f"big-{secrets.token_hex(6)}"
        r = await client.post(
            "/v1/consumers",
            content=content,
            headers={"Idempotency-Key": key, "Content-Type": "application/json"},
        )
        assert_problem(r, 413, "payload_too_large")
        stored = await rt.db.fetchval(
            "SELECT count(*) FROM gateway.idempotency_keys WHERE key = $1", key
        )
        assert stored == 0
