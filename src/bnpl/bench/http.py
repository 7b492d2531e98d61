"""The generator's HTTP client: pyreqwest (Rust's reqwest and hyper) with one pool of
keep-alive connections, bodies as ready bytes, answers as raw bytes. Per request this costs
the generator a fraction of what httpx would, and the generator shares the machine with the
platform it measures."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import secrets
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError

JSON = "application/json"
# Idle connections are dropped before the server's keep-alive timeout (5 s by default) would
# close them under a request about to be sent.
POOL_IDLE_S = 3.0

__all__ = ["POOL_IDLE_S", "Answer", "Http", "JsonApi", "PyreqwestError", "problem_code"]


class Http:
    """Requests to one base URL with at most `connections` in flight (more wait for one)."""

    def __init__(self, base_url: str, connections: int, timeout_s: float = 60.0) -> None:
        self.base = base_url.rstrip("/")
        self.client: Client = (
            ClientBuilder()
            .max_connections(connections)
            .timeout(timedelta(seconds=timeout_s))
            .connect_timeout(timedelta(seconds=5))
            .pool_idle_timeout(timedelta(seconds=POOL_IDLE_S))
            .error_for_status(False)
            .http1_only()
            .build()
        )

    async def send(
        self,
        method: str,
        path: str,
        authorization: str | None,
        body: bytes | None = None,
        timeout_s: float | None = None,
        idempotency_key: str | None = None,
    ) -> tuple[int, Any]:
        """(status, raw body). Transport failures and timeouts raise `PyreqwestError`."""
        request = self.client.request(method, self.base + path)
        if authorization is not None:
            request = request.header("Authorization", authorization)
        if idempotency_key is not None:
            request = request.header("Idempotency-Key", idempotency_key)
        if body is not None:
            request = request.header("Content-Type", JSON).body_bytes(body)
        if timeout_s is not None:
            request = request.timeout(timedelta(seconds=timeout_s))
        response = await request.build().send()
        return response.status, await response.bytes()

    async def aclose(self) -> None:
        await self.client.close()


def problem_code(raw: Any) -> str:
    """The `code` of a problem+json answer, or `-` when the answer has none."""
    try:
        code = orjson.loads(memoryview(raw)).get("code")
    except (orjson.JSONDecodeError, AttributeError, TypeError):
        return "-"
    return str(code) if code else "-"


# -- the JSON client of `bnpl simulate` ------------------------------------------------------

BUSY_RETRIES = 8  # 429 / 503 answers waited out before giving up
TRANSPORT_RETRIES = 3


@dataclass(frozen=True, slots=True)
class Answer:
    status: int  # 0 when no answer came
    body: Any  # the decoded JSON (None when there is none)
    code: str  # the problem's `code`, or "-"


class JsonApi:
    """The public API as a well-behaved client speaks it: JSON in and out, an
    `Idempotency-Key` on every POST (so a re-send after a lost answer does nothing twice),
    429 and 503 waited out, and every answer that is neither expected nor a known benign
    refusal counted in `errors` by route, status and problem code."""

    def __init__(self, http: Http, admin_token: str) -> None:
        self.http = http
        self.operator = f"Bearer {admin_token}"
        self.run_id = secrets.token_hex(4)  # idempotency keys unique to this run
        self.sent = 0
        self.errors: Counter[str] = Counter()
        self._keys = itertools.count(1)

    async def call(
        self,
        method: str,
        path: str,
        authorization: str | None,
        body: Any = None,
        *,
        route: str,
        expect: Collection[int] = (200,),
        benign: Collection[str] = (),
        timeout_s: float | None = None,
    ) -> Answer:
        raw_body = orjson.dumps(body) if body is not None else None
        key = f"run-{self.run_id}-{next(self._keys)}" if method == "POST" else None
        status, raw, code = 0, None, "-"
        busy = transport = 0
        while True:
            self.sent += 1
            try:
                status, raw = await self.http.send(
                    method, path, authorization, raw_body, timeout_s=timeout_s, idempotency_key=key
                )
            except PyreqwestError as exc:
                transport += 1
                status, raw, code = 0, None, type(exc).__name__
                if transport <= TRANSPORT_RETRIES:  # safe: a POST goes again with its key
                    await asyncio.sleep(0.5 * transport)
                    continue
                break
            code = "-" if 200 <= status < 300 else problem_code(raw)
            waiting = status in (429, 503) or code == "idempotency_request_in_progress"
            if waiting and busy < BUSY_RETRIES:
                busy += 1
                await asyncio.sleep(min(2.0, 0.25 * busy))
                continue
            break
        parsed = None
        if raw is not None and len(raw):
            with contextlib.suppress(orjson.JSONDecodeError):
                parsed = orjson.loads(memoryview(raw))
        if status not in expect and code not in benign:
            self.errors[f"{route} {status} {code}"] += 1
        return Answer(status, parsed, code)

    async def pages(self, path: str, authorization: str, *, route: str) -> list[Any]:
        """Every item of a list endpoint, 100 a page."""
        items: list[Any] = []
        cursor: str | None = None
        separator = "&" if "?" in path else "?"
        while True:
            url = f"{path}{separator}limit=100" + (f"&starting_after={cursor}" if cursor else "")
            answer = await self.call("GET", url, authorization, route=route)
            if answer.status != 200:
                return items
            items.extend(answer.body["data"])
            cursor = answer.body.get("next_cursor")
            if not answer.body.get("has_more") or not cursor:
                return items
