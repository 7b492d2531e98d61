"""PostgreSQL access: one asyncpg pool per process, plain SQL in each context's repository.

Services never commit: the request or job boundary opens `Database.transaction()` and passes
the connection down, so the business change, its outbox event, its ledger entry and its audit
record commit together.

Rows as jsonb: a batch statement takes its rows as one jsonb parameter, a list of tuples
(written by `json_text`, the jsonb codec), and reads them back positionally:
``SELECT r->>0, (r->>1)::bigint FROM jsonb_array_elements($1::jsonb) AS r``. Parallel
arrays cost asyncpg about 0.8 µs of client CPU per element (it checks every element's type
through `collections.abc`); a jsonb parameter costs a tenth of that, and PostgreSQL about
as much as arrays. Integers stay exact: jsonb numbers are numerics, cast to bigint. An
UPDATE also takes its keys as an array (``AND p.id = ANY($2::text[])``), so the planner
drives it by the primary key rather than by a scan joined to the rows.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson

Connection = asyncpg.Connection

# Dates, times and dataclasses as `str()` writes them, as the standard library's encoder
# (with `default=str`) did before.
_ORJSON = (
    orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
)


def json_text(value: Any) -> str:
    """JSON as the platform writes it to json/jsonb columns (orjson: events and audit
    records are written thousands a second; the standard encoder takes what orjson refuses,
    an integer beyond 64 bits)."""
    try:
        return orjson.dumps(value, default=str, option=_ORJSON).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), default=str)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        # Decoded by the standard library: orjson reads an integer beyond 64 bits as a float.
        await conn.set_type_codec(name, encoder=json_text, decoder=json.loads, schema="pg_catalog")


async def _no_reset(conn: asyncpg.Connection) -> None:
    # Connections are returned clean (no session state is ever set), so skip asyncpg's
    # reset query and save a round trip per request.
    return None


class Database:
    def __init__(self, dsn: str, *, min_size: int = 2, max_size: int = 20) -> None:
        self.dsn = dsn
        self._min_size = min_size
        self._max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self._min_size,
            max_size=self._max_size,
            init=_init_connection,
            reset=_no_reset,
            statement_cache_size=512,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def connect_raw(self) -> asyncpg.Connection:
        """A connection of its own, outside the pool (a LISTEN that lives as long as the
        process); the caller closes it."""
        conn: asyncpg.Connection = await asyncpg.connect(self.dsn)
        await _init_connection(conn)
        return conn

    @property
    def max_size(self) -> int:
        """The most connections the pool opens."""
        return self._max_size

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("database is not open")
        return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        async with self.pool.acquire() as conn, conn.transaction():
            yield conn

    async def fetchval(self, query: str, *args: Any) -> Any:
        return await self.pool.fetchval(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await self.pool.fetch(query, *args)
        return rows

    async def fetchrow(self, query: str, *args: Any) -> asyncpg.Record | None:
        return await self.pool.fetchrow(query, *args)

    async def execute(self, query: str, *args: Any) -> str:
        status: str = await self.pool.execute(query, *args)
        return status
