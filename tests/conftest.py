"""Test set-up: real PostgreSQL and real Redis, never mocks of them.

`BNPL_TEST_DATABASE_URL` / `BNPL_TEST_REDIS_URL` point at servers to use (CI sets them to the
machine's own); without them an embedded PostgreSQL and a Valkey server (both from PyPI wheels)
are started here. Every run gets a database of its own, created fresh and dropped at the end.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bnpl.app import create_app
from bnpl.bench.platform import free_port
from bnpl.config import Settings
from bnpl.kit.embedded import valkey_command
from bnpl.logs import json_lines
from bnpl.runtime import Runtime
from tests.support import Api, fresh_database

ADMIN_TOKEN = "test-admin-token"

# Every log line of the run, as the platform writes them in production (JSON, INFO and up),
# kept for the suite-end scan for secrets (tests/test_suite_end.py).
LOG_FILE = Path(tempfile.gettempdir()) / f"bnpl-test-{os.getpid()}.log"


def pytest_configure(config: pytest.Config) -> None:
    LOG_FILE.write_text("")
    # Appending: uvicorn's logging set-up closes every handler, and a closed "w" handler
    # never reopens its file.
    logging.getLogger().addHandler(json_lines(logging.FileHandler(LOG_FILE, "a", "utf-8")))
    logging.getLogger("bnpl").setLevel(logging.INFO)


def pytest_unconfigure(config: pytest.Config) -> None:
    LOG_FILE.unlink(missing_ok=True)


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
    async with fresh_database(postgres_server, f"bnpl_test_{os.getpid()}") as dsn:
        yield dsn


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    url = os.environ.get("BNPL_TEST_REDIS_URL")
    if url:
        yield url
        return
    port = free_port()
    proc = subprocess.Popen(
        valkey_command(port),  # the platform's embedded Redis, as `bnpl up` starts it
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
    async with fresh_database(postgres_server, f"bnpl_iso_{os.getpid()}") as dsn:
        application = create_app(settings.model_copy(update={"database_url": dsn, **overrides}))
        async with LifespanManager(application, startup_timeout=60, shutdown_timeout=30):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as c:
                yield Api(c, application.state.runtime, ADMIN_TOKEN)


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
