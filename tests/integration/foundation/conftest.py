"""Fixtures of the foundation tests.

- `probe`: a second instance of the platform app on the shared test database, with the test
  router of `probe.py` and test principals, so the shared `app` is never disturbed;
- `scratch`: a database of its own per test (copied from a migrated template), for the bus,
  the scheduler and the audit chain, where a test controls every consumer and may break the
  chain on purpose without harming anyone else.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from bnpl.app import create_app
from bnpl.bench.platform import with_database
from bnpl.bootstrap import Roles
from bnpl.config import Settings
from bnpl.kit.db import Database
from bnpl.kit.migrate import migrate
from bnpl.runtime import Runtime
from tests.integration.foundation import probe
from tests.support import bearer

PROBE_CONSUMER_RULE = "3/second"


@dataclass
class Probe:
    app: FastAPI
    rt: Runtime
    client: httpx.AsyncClient
    settings: Settings

    @property
    def operator(self) -> dict[str, str]:
        return bearer(self.settings.admin_token)

    async def widgets(self, owner: str, tag: str | None = None) -> int:
        count: int = await self.rt.db.fetchval(
            f"SELECT count(*) FROM {probe.SCHEMA}.widgets "
            "WHERE owner = $1 AND ($2::text IS NULL OR tag = $2)",
            owner,
            tag,
        )
        return count


@asynccontextmanager
async def running_probe(
    settings: Settings, roles: Roles = Roles(workers=False)
) -> AsyncIterator[Probe]:
    """The platform app with the probe router, started (no background workers by default)."""
    app = create_app(settings, roles)
    app.include_router(probe.router)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        probe.install_resolvers(app)
        rt: Runtime = app.state.runtime
        await rt.db.execute(probe.DDL)
        # A 500 must come back as an answer, not as an exception in the test.
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://probe.test") as client:
            yield Probe(app, rt, client, settings)


@pytest.fixture(scope="package")
async def probe_app(settings: Settings) -> AsyncIterator[Probe]:
    """A second platform instance on the shared test database, with a tiny consumer limit."""
    tuned = settings.model_copy(
        update={"rate_limit_consumer": PROBE_CONSUMER_RULE, "db_pool_max": 8}
    )
    async with running_probe(tuned) as running:
        yield running


@pytest.fixture(scope="session")
async def template_database(postgres_server: str) -> AsyncIterator[str]:
    """A migrated database that `scratch` copies (CREATE DATABASE ... TEMPLATE)."""
    name = f"bnpl_tpl_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(postgres_server, name))
    try:
        await migrate(conn)
    finally:
        await conn.close()
    yield name
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass
class Scratch:
    dsn: str
    db: Database

    async def database(self, max_size: int = 6) -> Database:
        """Another pool on this database, as a second process would have."""
        db = Database(self.dsn, min_size=1, max_size=max_size)
        await db.open()
        return db


@pytest.fixture
async def scratch(postgres_server: str, template_database: str) -> AsyncIterator[Scratch]:
    """A fresh, migrated database of this test's own."""
    name = f"bnpl_scratch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
    finally:
        await admin.close()
    dsn = with_database(postgres_server, name)
    db = Database(dsn, min_size=1, max_size=8)
    await db.open()
    try:
        yield Scratch(dsn, db)
    finally:
        await db.close()
        admin = await asyncpg.connect(postgres_server)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture
async def scratch_app(scratch: Scratch, settings: Settings) -> AsyncIterator[Probe]:
    """The platform app with the probe router on this test's own database."""
    own = settings.model_copy(update={"database_url": scratch.dsn, "db_pool_max": 4})
    async with running_probe(own) as running:
        yield running
