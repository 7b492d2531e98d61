"""Plain-SQL migrations, one folder per context (`bnpl/<context>/migrations/NNNN_name.sql`).

Each context owns a PostgreSQL schema of its own; its migrations create and change only that
schema. Files apply in the order of `CONTEXTS`, then by number, each in its own transaction,
under an advisory lock so that several processes starting at once apply each file once.
"""

from __future__ import annotations

import logging
from importlib import resources

import asyncpg

log = logging.getLogger(__name__)

# Owners of schemas, in dependency order (infrastructure first).
CONTEXTS: tuple[str, ...] = (
    "kit",
    "messaging",
    "scheduler",
    "gateway",
    "audit",
    "providers",
    "identity",
    "onboarding",
    "merchants",
    "credit",
    "checkout",
    "installments",
    "payments",
    "ledger",
    "reporting",
    "notifications",
)

_LOCK_KEY = 0x424E504C  # "BNPL"


def discover() -> list[tuple[str, str, str]]:
    """(context, file name, sql) for every migration, in apply order."""
    found: list[tuple[str, str, str]] = []
    for context in CONTEXTS:
        try:
            folder = resources.files(f"bnpl.{context}").joinpath("migrations")
        except ModuleNotFoundError:
            continue
        if not folder.is_dir():
            continue
        files = sorted(
            (f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name
        )
        found.extend((context, f.name, f.read_text()) for f in files)
    return found


async def migrate(conn: asyncpg.Connection) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    await conn.execute(
        """
        CREATE TABLE IF NOT EXISTS public.schema_migrations (
            context text NOT NULL,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (context, name)
        )
        """
    )
    applied: list[str] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_KEY)
    try:
        done = {
            (r["context"], r["name"])
            for r in await conn.fetch("SELECT context, name FROM public.schema_migrations")
        }
        for context, name, sql in discover():
            if (context, name) in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO public.schema_migrations (context, name) VALUES ($1, $2)",
                    context,
                    name,
                )
            log.info("applied migration", extra={"context": context, "migration": name})
            applied.append(f"{context}/{name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_KEY)
    return applied
