"""The edge's behaviour, through real NGINX (see conftest.py): TLS, routing, limits, gzip,
caching, and what happens to requests when an API process dies or hangs under load."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections import Counter
from typing import Any

import asyncpg
import httpx

from tests.e2e.edge.conftest import READ_TIMEOUT_S, Edge


def merchant_body(name: str) -> dict[str, Any]:
    return {
        "legal_name": name,
        "website": "https://edge.example",
        "email": "ops@edge.example",
        "country": "US",
        "mcc": "5941",
        "default_currency": "USD",
        "settlement_account": {"account_number": "000123456789", "routing_number": "110000000"},
    }


async def test_tls_routing_and_request_ids(edge: Edge) -> None:
    async with edge.client() as client:
        r = await client.get("/v1/merchants", headers={**edge.operator, "X-Request-Id": "edge-1"})
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == "edge-1"  # passed through to the API and back
        assert r.headers["strict-transport-security"].startswith("max-age=")
        assert "server" not in r.headers or r.headers["server"] == "nginx"  # no version
        # Without one, NGINX's own request id reaches the API.
        r = await client.get("/v1/merchants", headers=edge.operator)
        assert len(r.headers["x-request-id"]) == 32
        # Operations endpoints are not on the internet.
        assert (await client.get("/metrics", headers=edge.operator)).status_code == 404
        assert (await client.get("/readyz")).status_code == 404
    async with httpx.AsyncClient() as plain:
        r = await plain.get(f"{edge.http_url}/v1/merchants", follow_redirects=False)
        assert r.status_code == 308 and r.headers["location"].startswith("https://")
        # Plain HTTP on the TLS port is refused.
        r = await plain.get(f"{edge.url.replace('https://', 'http://')}/healthz")
        assert r.status_code == 400


async def test_bodies_over_a_mebibyte_never_reach_the_api(edge: Edge) -> None:
    edge.access_log()
    async with edge.client() as client:
        r = await client.post(
            "/v1/merchants",
            headers={**edge.operator, "content-type": "application/json"},
            content=b"{" + b" " * (1024 * 1024 + 10) + b"}",
        )
    assert r.status_code == 413, r.text
    assert r.json()["edge"] is True and r.json()["code"] == "payload_too_large"
    (line,) = [x for x in await edge.access_log_after() if x["method"] == "POST"]
    assert line["upstream"] == "", line


async def test_gzip_and_public_content_cached_without_credentials(edge: Edge) -> None:
    async with edge.client() as client:
        first = await client.get("/openapi.json", headers={"accept-encoding": "gzip"})
        assert first.status_code == 200
        assert first.headers["content-encoding"] == "gzip"
        assert "paths" in first.json()
        again = await client.get("/openapi.json", headers={"accept-encoding": "gzip"})
        assert again.headers["x-cache-status"] == "HIT"
        # With credentials, never from (or into) the cache.
        bypass = await client.get("/openapi.json", headers=edge.operator)
        assert bypass.headers["x-cache-status"] == "BYPASS"
        # API answers are not cached.
        listed = await client.get("/v1/merchants", headers=edge.operator)
        assert "x-cache-status" not in listed.headers
        # JSON API answers are compressed too when large enough.
        big = await client.get(
            "/v1/merchants?limit=100", headers={**edge.operator, "accept-encoding": "gzip"}
        )
        assert big.status_code == 200


async def test_logins_are_rate_limited_per_client(edge: Edge) -> None:
    async with edge.client() as client:
        answers = await asyncio.gather(*(client.post("/v1/auth/login", json={}) for _ in range(40)))
    statuses = Counter(a.status_code for a in answers)
    limited = [a for a in answers if a.status_code == 429]
    # 5/s with a burst of 20, nodelay: about 21 pass to the API (422: empty body), the rest
    # are refused by the edge itself.
    assert 15 <= len(limited) <= 25, statuses
    assert all(a.json().get("edge") is True for a in limited)
    assert all(a.headers["retry-after"] == "1" for a in limited)
    await asyncio.sleep(1.5)  # let the window refill for the other tests


class Load:
    """Operators' GETs and POSTs (each POST a merchant with a unique name, and no
    Idempotency-Key: nothing in the API would stop a second delivery) from `clients`
    concurrent clients at about `rate` requests per second in all, until stopped."""

    def __init__(self, edge: Edge, clients: int = 4, rate: float = 80) -> None:
        self.edge = edge
        self.clients = clients
        self.pause = clients / rate
        self.stop = asyncio.Event()
        self.results: list[tuple[str, str, float, int, dict[str, Any]]] = []
        self.tag = secrets.token_hex(4)

    async def _client(self, n: int) -> None:
        async with self.edge.client() as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                started = time.monotonic()
                if i % 2:
                    name = f"Edge {self.tag} {n}-{i} LLC"
                    method = "POST"
                    coro = client.post(
                        "/v1/merchants", json=merchant_body(name), headers=self.edge.operator
                    )
                else:
                    name, method = "", "GET"
                    coro = client.get("/v1/merchants?limit=1", headers=self.edge.operator)
                try:
                    r = await coro
                    status, body = r.status_code, r.json()
                except httpx.HTTPError as e:
                    status, body = 0, {"error": repr(e)}
                self.results.append((method, name, started, status, body))
                await asyncio.sleep(max(0.0, self.pause - (time.monotonic() - started)))

    async def run_until(self, *steps: tuple[float, Any]) -> None:
        """Run the load; each step is (seconds after the previous one, action)."""
        tasks = [asyncio.create_task(self._client(n)) for n in range(self.clients)]
        try:
            for delay, action in steps:
                await asyncio.sleep(delay)
                action()
        finally:
            self.stop.set()
            await asyncio.gather(*tasks)

    def posts(self) -> list[tuple[str, float, int, dict[str, Any]]]:
        return [(n, t, s, b) for m, n, t, s, b in self.results if m == "POST"]

    def gets(self) -> list[tuple[float, int]]:
        return [(t, s) for m, _, t, s, _ in self.results if m == "GET"]


async def merchants_named(edge: Edge, tag: str) -> Counter[str]:
    conn = await asyncpg.connect(edge.database_url)
    try:
        rows = await conn.fetch(
            "SELECT legal_name FROM merchants.merchants WHERE legal_name LIKE $1", f"Edge {tag} %"
        )
    finally:
        await conn.close()
    return Counter(r["legal_name"] for r in rows)


async def test_an_api_process_killed_or_hung_under_load(edge: Edge) -> None:
    """First one API process is killed (SIGKILL), then another hangs (SIGSTOP) for longer
    than the edge's read timeout and comes back, while GETs and POSTs keep coming."""
    killed, hung = edge.apis[0], edge.apis[1]
    killed_at: list[float] = []
    hung_at: list[float] = []
    load = Load(edge)
    edge.access_log()

    def kill() -> None:
        killed_at.append(time.monotonic())
        killed.process.kill()

    def freeze() -> None:
        hung_at.append(time.monotonic())
        os.kill(hung.process.pid, signal.SIGSTOP)

    def thaw() -> None:
        # It resumes the requests the edge gave up on: the POSTs among them commit now.
        os.kill(hung.process.pid, signal.SIGCONT)

    await load.run_until((1.0, kill), (1.5, freeze), (READ_TIMEOUT_S + 1.5, thaw), (1.0, print))
    log = await edge.access_log_after()

    # Every GET succeeded: a connection refused, reset or left unanswered sent it to another
    # API process.
    gets = load.gets()
    assert len(gets) > 50
    assert Counter(s for _, s in gets) == Counter({200: len(gets)}), Counter(s for _, s in gets)
    retried_gets = [x for x in log if x["method"] == "GET" and "," in x["upstream"]]
    assert retried_gets, "no GET was passed on to another API process"
    assert any(x["upstream_status"].startswith("504") for x in retried_gets), retried_gets

    # POSTs: those whose connection failed before they were sent went to another process;
    # those already sent to the dying or hung one were answered 503 (the client retries
    # with its Idempotency-Key), never sent again.
    posts = load.posts()
    failed = [(n, t, s, b) for n, t, s, b in posts if s != 201]
    assert all(s == 503 and b.get("code") == "unavailable" for _, _, s, b in failed), failed
    assert len(failed) <= 2 * load.clients, failed
    post_lines = [x for x in log if x["method"] == "POST"]
    retried = [x for x in post_lines if "," in x["upstream"]]
    assert all(x["upstream_status"].startswith("502") for x in retried), retried
    not_retried = [x for x in post_lines if x["upstream_status"] in ("504", "502")]
    assert any(x["upstream_status"] == "504" for x in not_retried), (
        "no POST was caught by the hang: the scenario did not happen"
    )
    assert all(x["upstream"] in (edge.api_address(0), edge.api_address(1)) for x in not_retried)

    # Never twice: every POST made at most one merchant, and every 201 exactly one.
    await asyncio.sleep(1.0)  # the thawed process finishes what it had
    made = await merchants_named(edge, load.tag)
    assert max(made.values()) == 1, [n for n, c in made.items() if c > 1]
    created = {n for n, _, s, _ in posts if s == 201}
    assert all(made[n] == 1 for n in created)
    assert set(made) <= {n for n, _, _, _ in posts}

    # After the kill and the hang, the rest of the load was served in full.
    settled = hung_at[0] + READ_TIMEOUT_S + 0.5
    assert all(s in (200, 201) for _, _, t, s, _ in load.results if t > settled + 1.5)
    assert killed.process.poll() is not None and hung.process.poll() is None
