"""`bnpl bench` runs: a few seconds of open-loop purchases against a platform it starts itself
(a fresh database on the test server, `bnpl sandbox` and `bnpl up` as child processes), and
the JSON object it prints last carries the figures. No timing is asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import typer

from bnpl.bench.cli import loopback_url


def _bench(
    postgres_server: str, *args: str, timeout: float = 150
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BNPL_BENCH_DATABASE_URL": postgres_server}
    env.pop("BNPL_DATABASE_URL", None)
    return subprocess.run(
        [sys.executable, "-m", "bnpl.cli", "bench", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_a_short_run_completes_purchases_without_errors(postgres_server: str) -> None:
    done = _bench(
        postgres_server,
        *("--rate", "8", "--duration", "4", "--warmup", "1"),
        *("--merchants", "5", "--consumers", "200", "--json"),
        # Logins and token refreshes are rare in a short run: make them common here.
        *("--mix", "login=0.2,refund=0.2", "--token-refresh-after", "2"),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    for field in ("purchases_per_s", "p50_ms", "p99_ms", "errors", "endpoints", "processes"):
        assert field in figures, field
    assert figures["errors"] == 0, figures["errors_by_code"]
    assert figures["purchases"]["captured"] > 0 and figures["purchases"]["failed"] == 0
    assert figures["purchases_per_s"] > 0
    assert {"POST /v1/checkouts", "POST /v1/checkouts/{id}/confirm"} <= set(figures["endpoints"])
    for endpoint in ("capture", "refunds"):
        assert figures["endpoints"][f"POST /v1/checkouts/{{id}}/{endpoint}"]["count"] > 0
    assert figures["endpoints"]["POST /v1/auth/login"]["count"] > 0
    assert figures["endpoints"]["POST /v1/auth/refresh"]["count"] > 0
    names = " ".join(p["name"] for p in figures["processes"])
    for role in ("bnpl up", "bnpl sandbox", "PostgreSQL", "bnpl bench"):
        assert role in names, names
    assert figures["seeding"] == {
        "merchants": 5,
        "consumers": 200,
        "seconds": figures["seeding"]["seconds"],
    }
    # The report went to stderr, the JSON alone to stdout.
    assert "purchase (create+confirm+capture)" in done.stderr
    assert len(done.stdout.strip().splitlines()) == 1


def test_only_this_machine_is_a_target(postgres_server: str) -> None:
    for url in (
        "http://10.0.0.1:8000",
        "http://example.com",
        "http://192.168.1.2",
        "ftp://127.0.0.1",
    ):
        with pytest.raises(typer.BadParameter):
            loopback_url(url)
    assert loopback_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000"
    assert loopback_url("http://127.3.2.1:9") == "http://127.3.2.1:9"
    assert loopback_url("http://localhost:8000") == "http://localhost:8000"
    # The command refuses before it sends anything.
    done = _bench(postgres_server, "--url", "http://10.1.2.3:8000", "--duration", "1", timeout=60)
    assert done.returncode == 2 and "--url" in done.stderr, done.stderr[-2000:]
