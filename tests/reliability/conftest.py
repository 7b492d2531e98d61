"""Fixtures of the reliability tests: a platform of their own served on a real socket.

`live` is an isolated platform (a fresh database, its own clock, workers in-process) whose
app is also served by uvicorn on a free 127.0.0.1 port, exactly as `bnpl serve` runs it
(the guarded protocol, the gateway's limits). Tests can speak to it both ways: in-process
(`live.api`, for set-up and `settle`) and over real HTTP (`live.url`), where requests are
handled concurrently by one event loop and a pool of database connections, as in production.

The per-principal rate limits and the velocity rule are raised out of the way (as `bnpl
bench` does): these tests send many requests from one address and principal on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from asgi_lifespan import LifespanManager

from bnpl.app import create_app
from bnpl.config import Settings
from bnpl.gateway.server import server_options
from tests.support import Api, fresh_database

UNLIMITED = "1000000/second"
LIVE_SETTINGS = {
    "rate_limit_merchant": UNLIMITED,
    "rate_limit_consumer": UNLIMITED,
    "rate_limit_per_address": UNLIMITED,
    "rate_limit_failed_logins": UNLIMITED,
    "velocity_max_approvals_24h": 1_000_000,
    "scheduler_interval_s": 3600.0,  # time-driven work runs only when a test moves the clock
}


@dataclass
class Live:
    api: Api
    url: str

    @property
    def operator(self) -> dict[str, str]:
        return self.api.operator


class _Server(uvicorn.Server):
    """uvicorn inside the test process, which handles its own signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


@asynccontextmanager
async def live_platform(
    postgres_server: str, settings: Settings, **overrides: Any
) -> AsyncIterator[Live]:
    """A fresh database, the platform on it (API and workers), served on a free port."""
    own = settings.model_copy(update={**LIVE_SETTINGS, **overrides})
    async with fresh_database(postgres_server, f"bnpl_live_{os.getpid()}") as dsn:
        own = own.model_copy(update={"database_url": dsn})
        app = create_app(own)
        async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
            config = uvicorn.Config(
                app,
                host="127.0.0.1",
                port=0,
                log_level="warning",
                access_log=False,
                lifespan="off",  # LifespanManager runs it
                **server_options(own),
            )
            server = _Server(config)
            task = asyncio.create_task(server.serve())
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
            host, port = server.servers[0].sockets[0].getsockname()[:2]
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as c:
                    yield Live(Api(c, app.state.runtime, own.admin_token), f"http://{host}:{port}")
            finally:
                server.should_exit = True
                await task


@pytest.fixture(scope="module")
async def live(postgres_server: str, settings: Settings) -> AsyncIterator[Live]:
    async with live_platform(postgres_server, settings) as platform:
        yield platform
