"""The platform on Kafka as separate OS processes, talking only through PostgreSQL and Kafka:
`bnpl sandbox`, two `bnpl worker` and `bnpl serve`. A purchase is driven to captured and its
first collection runs on the sandbox clock; the two workers share the consumer groups, the
merchant's webhooks reach its receiver and the notifications the sandbox's SMS, push and SMTP
servers; the event archive holds every event."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from confluent_kafka.admin import AdminClient

from bnpl.messaging.kafka import LocalCluster
from bnpl.messaging.kafka.broker import free_port
from tests.e2e.collections.helpers import purchase
from tests.e2e.webhooks.test_webhooks import OK, endpoint, received
from tests.support import Api, fresh_database, http_server

TOKEN = "kafka-processes-operator-token"


class RemoteApi(Api):
    """The suite's API helpers against a platform in other processes."""

    async def settle(self) -> None:
        # Moving the sandbox clock drains the bus in the API process: on Kafka, it relays
        # the outbox and waits until every consumer group (in the workers) has caught up.
        r = await self.client.post(
            "/v1/sandbox/clock", json={"advance": "PT1S"}, headers=self.operator, timeout=90
        )
        assert r.status_code == 200, r.text


@pytest.fixture
async def own_database(postgres_server: str) -> AsyncIterator[str]:
    async with fresh_database(postgres_server, "bnpl_kproc") as dsn:
        yield dsn


def _wait_until(
    check: Any, what: str, processes: list[subprocess.Popen[bytes]], logs: Path
) -> None:
    deadline = time.monotonic() + 90
    while not check():
        for p in processes:
            if p.poll() is not None:
                raise AssertionError(f"{what}: a process exited\n{_tail(logs)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not ready in time\n{_tail(logs)}")
        time.sleep(0.2)


def _tail(logs: Path) -> str:
    return "\n".join(f"--- {f.name}\n{f.read_text()[-2500:]}" for f in sorted(logs.glob("*.log")))


@pytest.fixture
def roles(
    own_database: str, kafka: LocalCluster, tmp_path: Path
) -> Iterator[tuple[str, dict[str, str], list[subprocess.Popen[bytes]]]]:
    api_port, sandbox_port, smtp_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "BNPL_DATABASE_URL": own_database,
        "BNPL_ADMIN_TOKEN": TOKEN,
        "BNPL_KAFKA_BOOTSTRAP": kafka.bootstrap,
        "BNPL_KAFKA_TOPIC_PREFIX": f"e{secrets.token_hex(4)}",
        "BNPL_KAFKA_PARTITIONS": "2",
        "BNPL_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "BNPL_PROVIDERS_URL": f"http://127.0.0.1:{sandbox_port}",
        "BNPL_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}",
        "BNPL_SANDBOX_LATENCY_MS": "0",
        "BNPL_LOG_JSON": "false",
    }
    env.pop("BNPL_REDIS_URL", None)
    bnpl = [sys.executable, "-m", "bnpl.cli"]
    subprocess.run([*bnpl, "migrate"], env=env, check=True, capture_output=True)
    commands = {
        "sandbox": ["sandbox", "--port", str(sandbox_port), "--smtp-port", str(smtp_port)],
        "worker-1": ["worker"],
        "worker-2": ["worker"],
        "serve": ["serve", "--port", str(api_port), "--workers", "1"],
    }
    processes: list[subprocess.Popen[bytes]] = []
    try:
        for name, args in commands.items():
            log = (tmp_path / f"{name}.log").open("wb")
            processes.append(
                subprocess.Popen([*bnpl, *args], env=env, stdout=log, stderr=subprocess.STDOUT)
            )
        url = f"http://127.0.0.1:{api_port}"

        def ready() -> bool:
            workers = all(
                b"BNPL worker running" in (tmp_path / f"worker-{i}.log").read_bytes()
                for i in (1, 2)
            )
            try:
                api = httpx.get(f"{url}/readyz", timeout=2).status_code == 200
            except httpx.HTTPError:
                api = False
            return workers and api

        _wait_until(ready, "the roles", processes, tmp_path)
        yield url, env, processes
    finally:
        for p in processes:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        codes = []
        for p in processes:
            try:
                codes.append(p.wait(30))
            except subprocess.TimeoutExpired:
                p.kill()
                codes.append(p.wait())
    # Every role stopped on SIGTERM, the workers cleanly (leaving their groups); uvicorn
    # re-raises the signal once it has shut down (-15).
    assert codes[1:3] == [0, 0] and set(codes) <= {0, -signal.SIGTERM}, (codes, _tail(tmp_path))
    assert "Traceback" not in _tail(tmp_path), _tail(tmp_path)


async def test_roles_as_processes_on_kafka(
    roles: tuple[str, dict[str, str], list[subprocess.Popen[bytes]]],
    kafka: LocalCluster,
    tmp_path: Path,
) -> None:
    url, env, processes = roles
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        api = RemoteApi(client, None, TOKEN)  # type: ignore[arg-type]
        r = await client.get("/readyz")
        assert r.json()["checks"] == {"database": "ok", "broker": "ok"}, r.text
        shop = await api.active_merchant()
        async with http_server(lambda _: OK) as (hook_url, seen):
            hook = await endpoint(
                api,
                shop,
                hook_url + "/hooks",
                ["checkout.created", "checkout.authorized", "checkout.captured"],
            )
            bought = await purchase(api, merchant=shop, amount=40_003)
            r = await client.get(f"/v1/checkouts/{bought['checkout_id']}", headers=api.operator)
            assert r.json()["status"] == "captured", r.text
            r = await client.post(
                "/v1/sandbox/clock", json={"advance": "P15D"}, headers=api.operator, timeout=120
            )
            assert r.status_code == 200, r.text
            # The merchant's webhooks, delivered by a worker process, signed, once, in order
            # (on a busy machine the last may still be on its way: wait for it, a while).
            deadline = time.monotonic() + 30
            while len(seen) < 3 and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            await asyncio.sleep(0.5)  # a duplicate would have arrived by now
            got = received(seen, hook["secret"])
        assert [e["type"] for e in got] == [
            "checkout.created",
            "checkout.authorized",
            "checkout.captured",
        ]
        r = await client.get(f"/v1/plans/{bought['plan_id']}", headers=api.operator)
        statuses = [i["status"] for i in r.json()["installments"]]
        assert statuses[:2] == ["paid", "paid"], r.text  # the first at purchase, then day 14

    conn = await asyncpg.connect(env["BNPL_DATABASE_URL"])
    try:
        unrelayed = await conn.fetchval(
            "SELECT count(*) FROM messaging.events WHERE position IS NULL"
        )
        delivered = await conn.fetchval(
            "SELECT (SELECT count(*) FROM sandbox.messages) + (SELECT count(*) FROM sandbox.emails)"
        )
        dead = await conn.fetchval("SELECT count(*) FROM messaging.dead_letters")
    finally:
        await conn.close()
    assert unrelayed == 0 and dead == 0
    assert delivered > 0  # notifications sent by the workers to the sandbox's servers

    # The archive (`bnpl lake archive`, a role of its own) holds every event, as DuckDB reads
    # it (`bnpl lake query`).
    lake_env = {**env, "BNPL_LAKE_URL": str(tmp_path / "lake")}
    bnpl = [sys.executable, "-m", "bnpl.cli"]
    await asyncio.to_thread(
        subprocess.run, [*bnpl, "lake", "archive"], env=lake_env, check=True, capture_output=True
    )
    answer = await asyncio.to_thread(
        subprocess.run,
        [*bnpl, "lake", "query", "--format", "csv", "SELECT count(DISTINCT id) AS n FROM events"],
        env=lake_env,
        check=True,
        capture_output=True,
        text=True,
    )
    conn = await asyncpg.connect(env["BNPL_DATABASE_URL"])
    try:
        total = await conn.fetchval("SELECT count(*) FROM messaging.events")
    finally:
        await conn.close()
    assert answer.stdout.splitlines() == ["n", str(total)], answer

    # Both worker processes are members of the consumer groups (each has partitions).
    workers = {str(p.pid) for p in processes[1:3]}
    admin = AdminClient({"bootstrap.servers": kafka.bootstrap})
    group = f"{env['BNPL_KAFKA_TOPIC_PREFIX']}.identity.verify_kyc"

    def members() -> set[str]:
        described = admin.describe_consumer_groups([group], request_timeout=10)[group].result(
            timeout=15
        )
        return {m.client_id.rsplit("-", 1)[1] for m in described.members}

    assert await asyncio.to_thread(members) == workers
