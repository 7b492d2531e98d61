"""The generator's HTTP client: pyreqwest (Rust's reqwest and hyper) with one pool of
keep-alive connections, bodies as ready bytes, answers as raw bytes. Per request this costs
the generator a fraction of what httpx would, and the generator shares the machine with the
platform it measures."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
from pyreqwest.client import Client, ClientBuilder
from pyreqwest.exceptions import PyreqwestError

JSON = "application/json"
# Idle connections are dropped before the server's keep-alive timeout (5 s by default) would
# close them under a request about to be sent.
POOL_IDLE_S = 3.0

__all__ = ["POOL_IDLE_S", "Http", "PyreqwestError", "problem_code"]


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
    ) -> tuple[int, Any]:
        """(status, raw body). Transport failures and timeouts raise `PyreqwestError`."""
        request = self.client.request(method, self.base + path)
        if authorization is not None:
            request = request.header("Authorization", authorization)
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
