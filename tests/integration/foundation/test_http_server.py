"""The API's HTTP server, as `bnpl up` / `bnpl serve` run it, on a real socket: slow clients
are timed out (request head, body, idle keep-alive), heads and bodies are bounded, too many
connections are answered 503 `overloaded`, and a loopback peer's X-Forwarded-For is not
believed. Timeouts are lowered here so that the test takes seconds."""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from bnpl.app import create_app
from bnpl.bootstrap import Roles, serve_in_background, stop_server
from bnpl.config import Settings
from bnpl.gateway.server import server_options
from bnpl.runtime import Runtime

HEAD_S = 2.0
BODY_S = 2.0
KEEP_ALIVE_S = 1
MAX_HEAD = 16 * 1024
MAX_CONNECTIONS = 4


@dataclass
class Server:
    host: str
    port: int
    rt: Runtime

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    async def connect(
        self, source: str | None = None
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        local = (source, 0) if source else None
        return await asyncio.open_connection(self.host, self.port, local_addr=local)


@pytest.fixture(scope="module")
async def server(settings: Settings, app: FastAPI) -> AsyncIterator[Server]:
    """The API on a real port, with the shared database (migrated by `app`)."""
    own = settings.model_copy(
        update={
            "http_header_timeout_s": HEAD_S,
            "http_body_timeout_s": BODY_S,
            "http_keep_alive_s": KEEP_ALIVE_S,
            "http_max_head_bytes": MAX_HEAD,
            "http_max_connections": MAX_CONNECTIONS,
            "rate_limit_per_address": "3/minute",
            "db_pool_max": 4,
        }
    )
    api = create_app(own, Roles(workers=False, migrate=False))
    running, url = await serve_in_background(api, "127.0.0.1", 0, **server_options(own))
    host, _, port = url.removeprefix("http://").rpartition(":")
    try:
        yield Server(host, int(port), api.state.runtime)
    finally:
        await stop_server(running)


async def closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


def problem(raw: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


async def trickle(
    writer: asyncio.StreamWriter, done: asyncio.Task[bytes], every: float, limit: float
) -> float:
    """Write one byte every `every` seconds until the server closes the connection; how long
    that took (or `limit` if it never did)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    while loop.time() - started < limit:
        await asyncio.wait([done], timeout=every)
        if done.done():
            return loop.time() - started
        try:
            writer.write(b"a")
            await writer.drain()
        except ConnectionError:
            pass
    return limit


async def test_a_trickled_request_head_is_cut_off(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bnpl.test\r\nX-Slow: ")
    done = asyncio.create_task(closed(reader))
    took = await trickle(writer, done, every=1.0, limit=4 * HEAD_S)
    writer.close()
    assert took < HEAD_S + 1.5, took  # closed at the deadline, not kept open by the bytes
    assert took >= HEAD_S - 1.1, took
    assert await done == b""  # closed without an answer


async def test_a_trickled_body_is_answered_408(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(
        b"POST /v1/auth/login HTTP/1.1\r\nHost: bnpl.test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{"
    )
    done = asyncio.create_task(closed(reader))
    took = await trickle(writer, done, every=0.5, limit=4 * BODY_S)
    writer.close()
    assert took < BODY_S + 1.0, took
    status, headers, body = problem(await done)
    assert status == 408
    assert headers["content-type"] == "application/problem+json"
    assert headers["x-request-id"]
    assert body["code"] == "request_timeout"


async def test_an_idle_connection_is_closed(server: Server) -> None:
    loop = asyncio.get_running_loop()
    # Nothing ever sent: closed at the head's deadline.
    reader, writer = await server.connect()
    started = loop.time()
    assert await asyncio.wait_for(closed(reader), 2 * HEAD_S) == b""
    assert loop.time() - started < HEAD_S + 1.0
    writer.close()
    # Kept alive after an answer: closed once idle for the keep-alive timeout.
    reader, writer = await server.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bnpl.test\r\n\r\n")
    answer = await reader.readuntil(b"}")
    assert answer.startswith(b"HTTP/1.1 200")
    started = loop.time()
    assert await asyncio.wait_for(closed(reader), 2 * HEAD_S) == b""
    assert loop.time() - started < KEEP_ALIVE_S + 0.7
    writer.close()


async def test_normal_requests_are_unaffected(server: Server) -> None:
    async with httpx.AsyncClient(base_url=server.url) as client:
        for _ in range(3):  # on one kept-alive connection
            r = await client.get("/healthz")
            assert r.status_code == 200

        async def quick_pieces() -> AsyncIterator[bytes]:
            for piece in (b'{"email": "a@example.com",', b' "password": "x"', b"}"):
                await asyncio.sleep(0.2)
                yield piece

        r = await client.post(
            "/v1/auth/refresh",
            content=quick_pieces(),
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 422, r.text  # read whole and answered (wrong fields)
        r = await client.post("/v1/auth/refresh", json={"refresh_token": "rt_" + "x" * 40})
        assert r.status_code == 401, r.text
        # A head of a few KiB is fine.
        r = await client.get("/healthz", headers={"X-Padding": "p" * 8000})
        assert r.status_code == 200


async def test_a_declared_oversized_body_is_refused_at_once(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(
        b"POST /v1/consumers HTTP/1.1\r\nHost: bnpl.test\r\n"
        b"Content-Type: application/json\r\nContent-Length: 104857600\r\n\r\n"
    )
    status, headers, body = problem(await asyncio.wait_for(closed(reader), 5))
    writer.close()
    assert (status, body["code"]) == (413, "payload_too_large")
    assert headers["connection"] == "close"


async def test_an_oversized_head_is_refused(server: Server) -> None:
    reader, writer = await server.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bnpl.test\r\nX-Big: ")
    await writer.drain()
    await asyncio.sleep(0.05)
    for _ in range(MAX_HEAD // 4096 + 1):  # just past the limit (writing on would be reset)
        writer.write(b"b" * 4096)
        await writer.drain()
        await asyncio.sleep(0.01)
    raw = await asyncio.wait_for(closed(reader), 5)
    writer.close()
    status, headers, body = problem(raw)
    assert (status, body["code"]) == (431, "headers_too_large")
    assert headers["content-type"] == "application/problem+json"


async def test_connections_beyond_the_limit_are_answered_503(server: Server) -> None:
    idle = [await server.connect() for _ in range(MAX_CONNECTIONS)]
    await asyncio.sleep(0.1)
    reader, writer = await server.connect()
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: bnpl.test\r\n\r\n")
    status, headers, body = problem(await asyncio.wait_for(closed(reader), 5))
    writer.close()
    assert (status, body["code"]) == (503, "overloaded")
    assert headers["retry-after"] == "1"
    for _, w in idle:
        w.close()
    await asyncio.sleep(0.2)
    async with httpx.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/healthz")).status_code == 200


async def test_a_loopback_peer_cannot_choose_its_address(server: Server) -> None:
    # From 127.0.0.1, whose X-Forwarded-For uvicorn itself would believe by default.
    await server.rt.limiter.clear("3/minute", "address:127.0.0.1")
    async with httpx.AsyncClient(base_url=server.url) as client:
        answers = []
        for i in range(4):
            r = await client.post(
                "/v1/auth/login",
                json={"email": f"nobody{secrets.token_hex(4)}@example.com", "password": "x"},
                headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            )
            answers.append(r.status_code)
    assert answers == [401, 401, 401, 429], answers
