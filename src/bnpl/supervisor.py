"""`bnpl up`: the whole platform on one machine, as the roles it is deployed as.

The supervisor starts the embedded PostgreSQL server (unless `BNPL_DATABASE_URL` names one)
and applies the migrations, then runs each role in processes of its own, as Kubernetes would
run its pods:

- a Valkey (Redis) server from the PyPI wheel, unless `BNPL_REDIS_URL` names one: the API
  processes must share their rate-limit and failed-login windows;
- `bnpl sandbox`: the provider simulators (unless `BNPL_PROVIDERS_URL` names providers),
  with the SMTP server that receives the platform's email (unless `BNPL_SMTP_URL` names one);
- `bnpl worker`: event consumers, time-driven work, the audit sealer;
- `bnpl serve --workers N`: the API, in N processes sharing one port (one per core by
  default), so that it is not capped at one core.

Ctrl-C (or SIGTERM) stops the API first, then the workers and the simulators, each given
`STOP_GRACE_S` to finish what it is doing; the embedded PostgreSQL server stops when the
supervisor exits. If any role dies, the supervisor stops the others and exits non-zero. The
children ask the kernel for SIGTERM if the supervisor itself dies (`PR_SET_PDEATHSIG`), so
a `kill -9` of the supervisor leaves no orphan serving a port.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from bnpl.bootstrap import database_url
from bnpl.config import Settings
from bnpl.kit.embedded import valkey_command
from bnpl.kit.migrate import migrate

STOP_GRACE_S = 10.0
READY_TIMEOUT_S = 60.0
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:  # pragma: no cover - runs in the child, before exec
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Role:
    name: str
    process: subprocess.Popen[bytes]


def _spawn(name: str, args: list[str], env: dict[str, str], *, program: bool = False) -> Role:
    """`bnpl ARGS` (or the program `args` itself) as a role of its own."""
    process = subprocess.Popen(
        args if program else [sys.executable, "-m", "bnpl.cli", *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL if program else None,
        start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops the roles
        preexec_fn=_die_with_parent,
    )
    return Role(name, process)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as answer:  # noqa: S310 (http://, built here)
            return bool(answer.status == 200)
    except OSError:
        return False


def _listens(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False


def _wait_until(
    ready: Callable[[], bool], what: str, roles: list[Role], stopping: Callable[[], bool]
) -> None:
    """Until `ready()` (a role is up), unless a role dies, the supervisor is stopping, or
    `READY_TIMEOUT_S` passes."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline and not stopping():
        for role in roles:
            if role.process.poll() is not None:
                raise RuntimeError(f"{role.name} exited with {role.process.returncode}")
        if ready():
            return
        time.sleep(0.1)
    if not stopping():
        raise RuntimeError(f"{what} was not ready within {READY_TIMEOUT_S:.0f} s")


def _stop(roles: list[Role]) -> None:
    """SIGTERM to each role in turn (the API first), SIGKILL after the grace period."""
    for role in reversed(roles):
        if role.process.poll() is None:
            role.process.send_signal(signal.SIGTERM)
            try:
                role.process.wait(STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                role.process.kill()
                role.process.wait()


async def _migrate(dsn: str) -> list[str]:
    conn = await asyncpg.connect(dsn)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def run(settings: Settings, host: str, port: int, api_workers: int) -> int:
    """Run every role until Ctrl-C or SIGTERM (exit 0) or until one of them dies (exit 1)."""
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    dsn = database_url(settings)
    applied = asyncio.run(_migrate(dsn))
    if applied:
        print(f"migrations applied: {', '.join(applied)}", file=sys.stderr)
    env = {**os.environ, "BNPL_DATABASE_URL": dsn}
    roles: list[Role] = []
    try:
        if settings.redis_url is None:
            # The API processes share their rate-limit and failed-login windows through
            # Redis; in memory, each process would grant a client its own allowance.
            redis_port = _free_port("127.0.0.1")
            roles.append(_spawn("valkey", valkey_command(redis_port), env, program=True))
            _wait_until(lambda: _listens(redis_port), "valkey", roles, stop.is_set)
            env["BNPL_REDIS_URL"] = f"redis://127.0.0.1:{redis_port}/0"
            # It keeps nothing on disk: the credit features stay in PostgreSQL.
            env.setdefault("BNPL_FEATURE_STORE", "postgres")
        if settings.providers_url is None:
            host_s = settings.sandbox_host
            sandbox_port = str(settings.sandbox_port or _free_port(host_s))
            sandbox = f"http://{host_s}:{sandbox_port}"
            simulators = ["sandbox", "--host", host_s, "--port", sandbox_port]
            if settings.smtp_url is None:  # the simulators receive the email too
                smtp_port = str(_free_port(host_s))
                simulators += ["--smtp-port", smtp_port]
                env["BNPL_SMTP_URL"] = f"smtp://{host_s}:{smtp_port}"
            roles.append(_spawn("sandbox", simulators, env))
            _wait_until(lambda: _answers(f"{sandbox}/healthz"), "bnpl sandbox", roles, stop.is_set)
            env["BNPL_PROVIDERS_URL"] = sandbox
        roles.append(_spawn("worker", ["worker"], env))
        serve = ["serve", "--host", host, "--port", str(port), "--workers", str(api_workers)]
        roles.append(_spawn("api", serve, env))
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a comparison)
        _wait_until(
            lambda: _answers(f"http://{shown}:{port}/readyz"), "the API", roles, stop.is_set
        )
        if stop.is_set():
            return 0
        print(
            f"BNPL platform on http://{shown}:{port}  (docs: http://{shown}:{port}/docs): "
            f"{api_workers} API process(es), 1 worker"
            + (", sandbox providers" if settings.providers_url is None else "")
            + f"\noperator token: Authorization: Bearer {settings.admin_token}"
            + (
                f"\ndemo shop: http://{shown}:{port}/sandbox/shop  "
                f"account: http://{shown}:{port}/account"
                if settings.sandbox
                else ""
            ),
            file=sys.stderr,
        )
        while not stop.is_set():
            dead = [r for r in roles if r.process.poll() is not None]
            if dead:
                print(
                    f"{dead[0].name} exited with {dead[0].process.returncode}; stopping",
                    file=sys.stderr,
                )
                return 1
            stop.wait(0.5)
        return 0
    except RuntimeError as exc:
        print(f"bnpl up: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C does not cut the stop
        _stop(roles)
