"""The platform under test: a fresh database on the PostgreSQL server, the provider simulators
and the platform each in a process of its own, as in production, started and stopped cleanly.

The server is the one `BNPL_BENCH_DATABASE_URL` or `BNPL_DATABASE_URL` names, else the
embedded default (`.bnpl/pgdata`, started here if it is not running). Each run creates a
database of its own on it and drops it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import asyncpg
from pyreqwest.client import ClientBuilder
from pyreqwest.exceptions import PyreqwestError

HOST = "127.0.0.1"
STOP_TIMEOUT_S = 20.0  # SIGTERM, then SIGKILL after this long
READY_TIMEOUT_S = 180.0

# What takes the gateway's per-principal rate limits and the velocity rule out of what is
# measured: one generator speaks for thousands of merchants and consumers, from one address.
UNLIMITED = "1000000/second"
BENCH_SETTINGS = {
    "BNPL_RATE_LIMIT_MERCHANT": UNLIMITED,
    "BNPL_RATE_LIMIT_CONSUMER": UNLIMITED,
    "BNPL_RATE_LIMIT_PER_ADDRESS": UNLIMITED,
    "BNPL_VELOCITY_MAX_APPROVALS_24H": "1000000",
    "BNPL_LOG_LEVEL": "WARNING",
}

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class Server:
    """A PostgreSQL server: its admin DSN, where it comes from, its postmaster's pid (None
    when it is not on this machine)."""

    dsn: str
    source: str
    postmaster_pid: int | None


@dataclass
class Target:
    """What the load is sent to: the API's URL, the operator token, and the pids to watch."""

    url: str
    admin_token: str
    platform_pid: int | None = None
    sandbox_pid: int | None = None
    server: Server | None = None
    database_url: str | None = None  # the platform's database, when started here


def with_database(dsn: str, name: str) -> str:
    """The DSN of database `name` on the server of `dsn` (URL forms with a query string too:
    `postgresql://user@/postgres?host=/socket`)."""
    base, _, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


def _postmaster_of(backend_pid: int) -> int | None:
    """The parent of a backend, if that backend runs on this machine."""
    try:
        with open(f"/proc/{backend_pid}/stat", encoding="ascii", errors="replace") as f:
            ppid = int(f.read().rpartition(")")[2].split()[1])
        with open(f"/proc/{ppid}/comm", encoding="ascii", errors="replace") as f:
            comm = f.read().strip()
    except (OSError, ValueError, IndexError):
        return None
    return ppid if comm.startswith("postgres") else None


async def database_server() -> Server:
    """The server to benchmark on (see the module docstring); its postmaster found from a
    backend's parent, so any server on this machine can be watched."""
    for variable in ("BNPL_BENCH_DATABASE_URL", "BNPL_DATABASE_URL"):
        dsn = os.environ.get(variable)
        if dsn:
            source = variable
            break
    else:
        from bnpl.config import Settings
        from bnpl.kit.embedded import start_embedded_postgres

        folder = Settings().pg_data_dir
        with warnings.catch_warnings():  # platformdirs on the runtime folder's mode
            warnings.simplefilter("ignore", UserWarning)
            dsn = await asyncio.to_thread(start_embedded_postgres, folder)
        source = f"embedded PostgreSQL in {folder}"
    conn = await asyncpg.connect(dsn)
    try:
        backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
        version = str(await conn.fetchval("SHOW server_version"))
        postmaster = _postmaster_of(backend)  # while the backend is alive
    finally:
        await conn.close()
    return Server(dsn, f"{source} (PostgreSQL {version})", postmaster)


@contextlib.asynccontextmanager
async def scratch_database(server: Server, prefix: str, log: Log) -> AsyncIterator[str]:
    """A new, empty database on `server` for the block; dropped after it."""
    name = f"{prefix}_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(server.dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    log(f"database: {name} on {server.source}")
    try:
        yield with_database(server.dsn, name)
    finally:
        admin = await asyncpg.connect(server.dsn)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def bnpl_command(*args: str) -> list[str]:
    """`bnpl ARGS` with this interpreter (the venv's), whatever is on PATH."""
    return [sys.executable, "-m", "bnpl.cli", *args]


class Child:
    """A child process whose output goes to a log file (shown if it fails to start)."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], folder: Path) -> None:
        self.name = name
        self.log_path = folder / f"{name}.log"
        with open(self.log_path, "wb") as out:
            self.process = subprocess.Popen(
                argv,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C here reaches it only through stop()
            )

    @property
    def pid(self) -> int:
        return self.process.pid

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, log: Log) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `STOP_TIMEOUT_S`."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.to_thread(self.process.wait, STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            log(f"{self.name} did not stop within {STOP_TIMEOUT_S:g} s: SIGKILL")
            self.process.kill()
            await asyncio.to_thread(self.process.wait, STOP_TIMEOUT_S)


async def wait_ready(url: str, child: Child, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Poll `url` until it answers 200; fail at once if the process exits."""
    client = ClientBuilder().timeout(timedelta(seconds=2)).build()
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            if child.process.poll() is not None:
                raise RuntimeError(
                    f"{child.name} exited with {child.process.returncode}:\n{child.tail()}"
                )
            try:
                response = await client.get(url).build().send()
                if response.status == 200:
                    return
            except PyreqwestError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{child.name} not ready after {timeout_s:g} s:\n{child.tail()}")
            await asyncio.sleep(0.2)
    finally:
        await client.close()


@contextlib.asynccontextmanager
async def started_platform(
    server: Server,
    admin_token: str,
    api_workers: int | None,
    log: Log,
    *,
    settings: Mapping[str, str] = BENCH_SETTINGS,
    name: str = "bench",
) -> AsyncIterator[Target]:
    """A fresh database on `server`, `bnpl sandbox` and `bnpl up` on free loopback ports,
    with `settings` over the environment; both stopped and the database dropped afterwards.
    `name` names the database (`bnpl_<name>_...`) and the log folder."""
    async with scratch_database(server, f"bnpl_{name}", log) as database_url:
        folder = Path(tempfile.mkdtemp(prefix=f"bnpl-{name}-"))
        sandbox_port, smtp_port, api_port = free_port(), free_port(), free_port()
        env = {
            **os.environ,
            "BNPL_DATABASE_URL": database_url,
            "BNPL_ADMIN_TOKEN": admin_token,
            **settings,
        }
        env.pop("BNPL_PROVIDERS_URL", None)
        env.pop("BNPL_SMTP_URL", None)
        children: list[Child] = []
        try:
            sandbox = Child(
                "sandbox",
                bnpl_command(
                    "sandbox",
                    *("--host", HOST, "--port", str(sandbox_port)),
                    *("--smtp-port", str(smtp_port)),  # the email is the simulators' work too
                ),
                env,
                folder,
            )
            children.append(sandbox)
            await wait_ready(f"http://{HOST}:{sandbox_port}/healthz", sandbox)
            up = ["up", "--host", HOST, "--port", str(api_port)]
            if api_workers is not None:
                up += ["--workers", str(api_workers)]
            platform_env = {
                **env,
                "BNPL_PROVIDERS_URL": f"http://{HOST}:{sandbox_port}",
                "BNPL_SMTP_URL": f"smtp://{HOST}:{smtp_port}",
            }
            platform = Child("platform", bnpl_command(*up), platform_env, folder)
            children.append(platform)
            url = f"http://{HOST}:{api_port}"
            await wait_ready(f"{url}/readyz", platform)
            log(
                f"platform: `bnpl {' '.join(up)}` [pid {platform.pid}], providers: "
                f"`bnpl sandbox --port {sandbox_port} --smtp-port {smtp_port}` "
                f"[pid {sandbox.pid}]; their logs in "
                f"{folder} (removed after a clean run)"
            )
            yield Target(url, admin_token, platform.pid, sandbox.pid, server, database_url)
        finally:
            for child in reversed(children):
                await child.stop(log)
        # Kept only when something failed (the exception went past the `finally` above).
        shutil.rmtree(folder, ignore_errors=True)
