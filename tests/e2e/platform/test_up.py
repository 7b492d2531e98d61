"""`bnpl up` as a user runs it: the supervisor starts the roles as processes of their own
(the providers, the workers, two API processes on one port), the platform works across them
(a merchant's KYB is handled by the worker process, woken by the API's NOTIFY), and Ctrl-C
stops every process cleanly, without a traceback."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from bnpl.bench import procstat
from bnpl.bench.platform import free_port
from tests.support import consumer_body, fresh_database

TOKEN = "up-test-operator-token"


def _descendants(pid: int) -> set[int]:
    return set(procstat.tree(pid, procstat.children_by_parent())) - {pid}


def _alive(pids: set[int]) -> dict[int, str]:
    """The processes among `pids` still running (not zombies), with their command lines."""
    alive = {}
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if state != "Z":
            alive[pid] = command
    return alive


@pytest.fixture
async def own_database(postgres_server: str) -> AsyncIterator[str]:
    """A database of its own: the test moves the sandbox clock by days, and its operator
    token (from which the sandbox derives the field-encryption key) is not the suite's."""
    async with fresh_database(postgres_server, "bnpl_up") as dsn:
        yield dsn


@pytest.fixture
def platform(own_database: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    port = free_port()
    env = {**os.environ, "BNPL_DATABASE_URL": own_database, "BNPL_ADMIN_TOKEN": TOKEN}
    env.pop("BNPL_PROVIDERS_URL", None)
    log = (tmp_path / "up.log").open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "bnpl.cli", "up", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, (tmp_path / "up.log").read_text()[-3000:]
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.2)
    try:
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def test_up_runs_the_roles_as_processes_and_ctrl_c_stops_them_all(
    platform: tuple[subprocess.Popen[str], str], tmp_path: Path
) -> None:
    try:
        _run_and_stop(*platform, tmp_path)
    except AssertionError as failure:  # the platform's own account of it, to read in CI
        log = (tmp_path / "up.log").read_text()[-4000:]
        raise AssertionError(f"{failure}\n--- bnpl up's output ---\n{log}") from failure


def _run_and_stop(process: subprocess.Popen[str], url: str, tmp_path: Path) -> None:
    roles = _descendants(process.pid)
    assert len(roles) >= 5  # sandbox, worker, serve and its two API processes
    operator = {"Authorization": f"Bearer {TOKEN}"}
    r = httpx.post(
        f"{url}/v1/merchants",
        headers=operator,
        json={
            "legal_name": "Supervised Shop LLC",
            "website": "https://shop.example",
            "email": "ops@shop.example",
            "country": "US",
            "mcc": "5941",
            "default_currency": "USD",
            "settlement_account": {"account_number": "000123456789", "routing_number": "110000000"},
        },
    )
    assert r.status_code == 201, r.text
    merchant = r.json()
    deadline = time.monotonic() + 20
    status = merchant["status"]
    while status != "active" and time.monotonic() < deadline:
        time.sleep(0.1)
        status = httpx.get(f"{url}/v1/merchants/{merchant['id']}", headers=operator).json()[
            "status"
        ]
    assert status == "active"  # the worker process verified the business

    # The sandbox clock moved through one API process is the time of the next request in
    # the other one at once (each request on a new connection, so both processes serve).
    r = httpx.post(f"{url}/v1/merchants/{merchant['id']}/api_keys", headers=operator)
    assert r.status_code == 201, r.text
    shop = {"Authorization": f"Bearer {r.json()['secret']}"}
    for _ in range(6):
        r = httpx.post(
            f"{url}/v1/sandbox/clock", headers=operator, json={"advance": "P1D"}, timeout=60
        )
        assert r.status_code == 200, r.text
        moved_to = datetime.fromisoformat(r.json()["now"])
        r = httpx.post(
            f"{url}/v1/checkouts", headers=shop, json={"amount": 40_000, "currency": "USD"}
        )
        assert r.status_code == 201, r.text
        assert datetime.fromisoformat(r.json()["created_at"]) >= moved_to

    # The failed-login window is one for all API processes (Redis, started by `bnpl up`):
    # five wrong passwords, whichever process each lands on, then 429.
    email = "ada-up@example.com"
    r = httpx.post(f"{url}/v1/consumers", json=consumer_body(email=email))
    assert r.status_code == 201, r.text
    answers = [
        httpx.post(f"{url}/v1/auth/login", json={"email": email, "password": "wrong guess"})
        for _ in range(12)
    ]
    assert [a.status_code for a in answers].count(401) == 5, [a.status_code for a in answers]
    assert answers[-1].status_code == 429

    process.send_signal(signal.SIGINT)
    assert process.wait(30) == 0
    output = (tmp_path / "up.log").read_text()
    assert "Traceback" not in output and "CancelledError" not in output, output[-3000:]
    deadline = time.monotonic() + 5
    while (left := _alive(roles)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == {}, left
