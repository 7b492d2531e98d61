"""`ProviderClient` over real sockets: what it sends, what it answers, how it fails.

The server is a plain asyncio TCP server that answers canned HTTP/1.1 bytes (or nothing),
so every case a provider can present (a slow answer, a closed connection, a body that is
not JSON) is produced exactly.
"""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest

from bnpl.providers.gateway.base import ProviderUnavailable
from bnpl.providers.http import ProviderClient
from tests.support import http_answer, http_server


async def test_post_sends_json_and_the_idempotency_key() -> None:
    async with http_server(lambda _: http_answer(201, b'{"id": "ch_1", "amount": 1234}')) as (
        url,
        seen,
    ):
        client = ProviderClient(url + "/", timeout_s=5)
        try:
            answer = await client.post("/gateway/v1/charges", {"amount": 1234}, key="k-1")
        finally:
            await client.aclose()
    assert (answer.status_code, answer.json()) == (201, {"id": "ch_1", "amount": 1234})
    [request] = seen
    head, _, body = request.partition(b"\r\n\r\n")
    assert head.startswith(b"1 POST /gateway/v1/charges HTTP/1.1")
    fields = (line.partition(b":") for line in head.split(b"\r\n")[1:])
    headers = {name.strip().lower(): value.strip() for name, _, value in fields}
    assert headers[b"idempotency-key"] == b"k-1"
    assert headers[b"content-type"] == b"application/json"
    assert orjson.loads(body) == {"amount": 1234}


async def test_connections_are_reused_and_errors_are_answers() -> None:
    answers = iter(
        [http_answer(402, b'{"error": {"code": "card_declined"}}'), http_answer(500, b"oops")]
    )
    async with http_server(lambda _: next(answers)) as (url, seen):
        client = ProviderClient(url, timeout_s=5)
        try:
            declined = await client.post("/gateway/v1/charges", {"amount": 1})
            failed = await client.post("/gateway/v1/charges", {"amount": 2})
        finally:
            await client.aclose()
    assert (declined.status_code, declined.body) == (402, {"error": {"code": "card_declined"}})
    assert (failed.status_code, failed.body) == (500, None)  # not JSON: no body
    # Both on the first connection: kept alive, even after an error status.
    assert [request.split(b" ", 2)[:2] for request in seen] == [[b"1", b"POST"], [b"1", b"POST"]]
    with pytest.raises(ValueError):
        failed.json()


async def test_get_with_query_parameters() -> None:
    async with http_server(lambda _: http_answer(200, b'{"data": []}')) as (url, seen):
        client = ProviderClient(url, timeout_s=5)
        try:
            answer = await client.get("/gateway/v1/charges", params={"token": "tok a&b"})
        finally:
            await client.aclose()
    assert answer.json() == {"data": []}
    assert seen[0].startswith(b"1 GET /gateway/v1/charges?token=tok+a%26b HTTP/1.1")


async def test_a_slow_provider_is_unavailable_after_the_timeout() -> None:
    async with http_server(lambda _: None) as (url, _):
        client = ProviderClient(url, timeout_s=5)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(ProviderUnavailable, match="timeout"):
                await client.post("/bureau/v1/reports", {"subject_id": "c"}, timeout=0.2)
            assert loop.time() - started < 2
        finally:
            await client.aclose()


async def test_no_server_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        client = ProviderClient(f"http://127.0.0.1:{port}", timeout_s=1)
        try:
            with pytest.raises(ProviderUnavailable):
                await client.post("/gateway/v1/charges", {"amount": 1})
        finally:
            await client.aclose()


async def test_a_connection_closed_before_the_answer_is_unavailable() -> None:
    async with http_server(lambda _: b"") as (url, _):  # nothing written, connection closed
        client = ProviderClient(url, timeout_s=5)
        try:
            with pytest.raises(ProviderUnavailable):
                await client.post("/gateway/v1/charges", {"amount": 1})
        finally:
            await client.aclose()
