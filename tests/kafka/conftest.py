"""The Kafka tests' set-up: a real Apache Kafka broker, started as `bnpl kafka` starts it.

The broker's jars are installed once into the project's data folder (`.bnpl/kafka/<version>`,
Maven downloads them from Maven Central the first time); the cluster runs on free loopback
ports in a folder of its own and is stopped at the end of the session. Each test uses topics
and consumer groups of its own (a unique topic prefix), and a database of its own.
"""

from __future__ import annotations

import secrets
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from bnpl.bench.platform import with_database
from bnpl.kit.db import Database
from bnpl.kit.migrate import migrate
from bnpl.messaging.kafka import KafkaOptions, LocalCluster, install

DATA_DIR = Path(__file__).resolve().parents[2] / ".bnpl"

EFFECTS = """
CREATE TABLE public.effects (
    n bigserial PRIMARY KEY,
    consumer text NOT NULL,
    worker text NOT NULL,
    event_id text NOT NULL,
    aggregate_id text NOT NULL,
    seq integer
)
"""


@pytest.fixture(scope="session")
def kafka_libs() -> Path:
    return install(DATA_DIR)


@pytest.fixture(scope="session")
def kafka(kafka_libs: Path) -> Iterator[LocalCluster]:
    """One broker (KRaft, combined broker and controller) for the session."""
    with tempfile.TemporaryDirectory(prefix="bnpl-kafka-") as folder:
        cluster = LocalCluster(kafka_libs, Path(folder), nodes=1, base_port=0, heap="384m")
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()


def options_for(cluster: LocalCluster, **overrides: object) -> KafkaOptions:
    """Options with a prefix of this test's own (its topics and groups), quick retries."""
    values: dict[str, object] = {
        "bootstrap": cluster.bootstrap,
        "prefix": f"t{secrets.token_hex(4)}",
        "partitions": 4,
        "replication": cluster.replication,
        "retry_attempts": 2,
        "retry_delay_s": 0.2,
        "session_timeout_ms": 3000,
        "message_timeout_ms": 3000,
    }
    values.update(overrides)
    return KafkaOptions(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
async def kafka_template(postgres_server: str) -> AsyncIterator[str]:
    """A migrated database with the effects table, copied by `kdb`."""
    name = f"bnpl_ktpl_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    conn = await asyncpg.connect(with_database(postgres_server, name))
    try:
        await migrate(conn)
        await conn.execute(EFFECTS)
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
async def scratch(postgres_server: str, kafka_template: str) -> AsyncIterator[Scratch]:
    """A fresh, migrated database of this test's own."""
    name = f"bnpl_kscratch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(postgres_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{kafka_template}"')
    finally:
        await admin.close()
    dsn = with_database(postgres_server, name)
    db = Database(dsn, min_size=1, max_size=10)
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
