"""Helpers shared by the integration and e2e tests; they speak only the public API."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import httpx

from bnpl.bench.platform import with_database
from bnpl.runtime import Runtime

PROBLEM = "application/problem+json"


def unique(prefix: str = "t") -> str:
    return f"{prefix}{secrets.token_hex(5)}"


@asynccontextmanager
async def fresh_database(server: str, prefix: str) -> AsyncIterator[str]:
    """A new, empty database on the PostgreSQL `server` (its DSN), dropped afterwards."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(server, name)
    finally:
        admin = await asyncpg.connect(server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def consumer_body(**overrides: Any) -> dict[str, Any]:
    """A sign-up body (`POST /v1/consumers`) with a unique email."""
    payload: dict[str, Any] = {
        "email": f"{unique('ada')}@example.com",
        "phone": "+14155550100",
        "password": "correct horse battery",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "date_of_birth": "1990-12-10",
        "address": {
            "line1": "1 Main St",
            "city": "Springfield",
            "region": "IL",
            "postal_code": "62701",
            "country": "US",
        },
    }
    payload.update(overrides)
    return payload


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_problem(
    response: httpx.Response, status: int, code: str | None = None
) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if code is not None:
        assert body["code"] == code, body
    return body


@dataclass
class MerchantHandle:
    id: str
    secret: str
    body: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.secret)


@dataclass
class ConsumerHandle:
    id: str
    email: str
    password: str
    access_token: str
    refresh_token: str
    body: dict[str, Any] = field(default_factory=dict)

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.access_token)


@dataclass
class Api:
    client: httpx.AsyncClient
    rt: Runtime
    admin_token: str

    @property
    def operator(self) -> dict[str, str]:
        return bearer(self.admin_token)

    async def settle(self) -> None:
        """Let every committed event be handled (KYC, KYB, ...)."""
        await self.rt.bus.drain()

    def merchant_payload(self, **overrides: Any) -> dict[str, Any]:
        name = overrides.pop("legal_name", f"Acme {unique()} LLC")
        payload: dict[str, Any] = {
            "legal_name": name,
            "website": "https://acme.example",
            "email": f"ops-{unique()}@acme.example",
            "country": "US",
            "mcc": "5941",
            "default_currency": "USD",
            "settlement_account": {
                "account_number": "000123456789",
                "routing_number": "110000000",
            },
        }
        payload.update(overrides)
        return payload

    async def create_merchant(self, **overrides: Any) -> dict[str, Any]:
        r = await self.client.post(
            "/v1/merchants", json=self.merchant_payload(**overrides), headers=self.operator
        )
        assert r.status_code == 201, r.text
        body: dict[str, Any] = r.json()
        return body

    async def active_merchant(self, **overrides: Any) -> MerchantHandle:
        """A merchant that passed KYB, with a fresh secret API key."""
        merchant = await self.create_merchant(**overrides)
        await self.settle()
        r = await self.client.get(f"/v1/merchants/{merchant['id']}", headers=self.operator)
        assert r.json()["status"] == "active", r.text
        r = await self.client.post(
            f"/v1/merchants/{merchant['id']}/api_keys", headers=self.operator
        )
        assert r.status_code == 201, r.text
        return MerchantHandle(merchant["id"], r.json()["secret"], merchant)

    def consumer_payload(self, **overrides: Any) -> dict[str, Any]:
        return consumer_body(**overrides)

    async def login(self, email: str, password: str) -> dict[str, Any]:
        r = await self.client.post("/v1/auth/login", json={"email": email, "password": password})
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    async def consumer(self, *, verified: bool = True, **overrides: Any) -> ConsumerHandle:
        """A signed-up, logged-in consumer; KYC has run when `verified`."""
        payload = self.consumer_payload(**overrides)
        r = await self.client.post("/v1/consumers", json=payload)
        assert r.status_code == 201, r.text
        if verified:
            await self.settle()
        tokens = await self.login(payload["email"], payload["password"])
        return ConsumerHandle(
            r.json()["id"],
            payload["email"],
            payload["password"],
            tokens["access_token"],
            tokens["refresh_token"],
            r.json(),
        )

    async def add_card(self, consumer: ConsumerHandle, number: str = "4242424242424242") -> str:
        r = await self.client.post(
            "/v1/me/payment_methods",
            json={
                "type": "card",
                "card": {"number": number, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
            },
            headers=consumer.headers,
        )
        assert r.status_code == 201, r.text
        pm_id: str = r.json()["id"]
        return pm_id


# A canned HTTP/1.1 server for tests of outbound calls (provider adapters, webhooks): the
# request's head and body -> the answer's bytes (None: hang 30 s; b"": close unanswered).
Reply = Callable[[bytes], bytes | None]


def http_answer(status: int, body: bytes, content_type: str = "application/json") -> bytes:
    head = f"HTTP/1.1 {status} X\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}"
    return head.encode() + b"\r\n\r\n" + body


@asynccontextmanager
async def http_server(reply: Reply) -> AsyncIterator[tuple[str, list[bytes]]]:
    """A server on a free port; its URL and the requests it got, each prefixed with the
    number of the connection it came on (b"1 POST /...")."""
    seen: list[bytes] = []
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        number = str(connections).encode()
        try:
            while head := await reader.readuntil(b"\r\n\r\n"):
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                request = head + await reader.readexactly(length)
                seen.append(number + b" " + request)
                answer = reply(request)
                if answer is None:
                    await asyncio.sleep(30)
                if not answer:
                    return  # the connection closes without an answer
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", seen
    finally:
        server.close()
