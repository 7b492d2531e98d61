"""Benchmark: one autopay collection run over N due installments, gateway simulator included.

Usage::

    uv run python scripts/bench_collections.py                      # 10,000 installments
    uv run python scripts/bench_collections.py --installments 20000 --concurrency 128
    uv run python scripts/bench_collections.py --simulator in-process
    uv run python scripts/bench_collections.py --installments 20000 --workers 2 --template t20k

What it does, in a database of its own (on `--database-url`, `$BNPL_BENCH_DATABASE_URL`,
`$BNPL_DATABASE_URL`, `$BNPL_TEST_DATABASE_URL`, else an embedded PostgreSQL):

1. starts the card gateway simulator, by default as a separate `bnpl sandbox` process over
   the same database (so its HTTP round trip, its request handling and its own transaction
   are part of the measured work, and it competes for the same CPUs), with
   `--latency-ms` of simulated network/processor latency per charge;
2. sets up consumers and 4242 cards through the API, then N monthly_6 plans through the
   installments facade (plan, schedule, planned collection, `plan.authorized` ledger entry
   and credit exposure: what an authorization leaves), and moves business time one month
   on, so that exactly one installment of every plan is due;
3. runs ONE collection run: `CollectAutopay.run_due` (installments/autopay.py) in batches of
   `--batch-size` until nothing is due, exactly what a worker's scheduler does, and times
   every batch;
4. checks the outcome (every installment paid, one captured charge each, ledger verified)
   and prints installments settled per second, batch latency p50/p99, the settings and how
   fast this machine runs plain Python right now (its speed drifts).

`--template NAME` sets the database up once, as database NAME, and later runs that name it
copy it instead (seconds instead of a minute or more), so runs compared with each other start
from the same rows. The copy is migrated before the run; its rows are what the code that
made the template wrote.

Nothing here asserts a speed: it prints figures (docs/collections.md keeps the results).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any

import asyncpg
import httpx

from bnpl import installments, ledger
from bnpl.app import create_app
from bnpl.bootstrap import Roles, serve_in_background, start_platform, stop_server
from bnpl.config import Settings
from bnpl.kit.db import Database
from bnpl.kit.gc_tuning import tune_for_service
from bnpl.kit.ids import new_id
from bnpl.kit.migrate import migrate
from bnpl.providers.sandbox import create_sandbox_app

ADMIN = "bench-admin-token"
OPERATOR = {"Authorization": f"Bearer {ADMIN}"}


def _admin_dsn(given: str | None) -> str:
    dsn = (
        given
        or os.environ.get("BNPL_BENCH_DATABASE_URL")
        or os.environ.get("BNPL_DATABASE_URL")
        or os.environ.get("BNPL_TEST_DATABASE_URL")
    )
    if dsn:
        return dsn
    from bnpl.kit.embedded import start_embedded_postgres

    return start_embedded_postgres(Path(tempfile.gettempdir()) / "bnpl-bench-pgdata")


def _with_database(dsn: str, name: str) -> str:
    base, _, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn(args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (0 where there is no /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --------------------------------------------------------------------------- set-up


async def _on_server(admin_dsn: str, sql: str, *args: object) -> object:
    """One statement on the server's admin database; its first value."""
    admin = await asyncpg.connect(admin_dsn)
    try:
        return await admin.fetchval(sql, *args)
    finally:
        await admin.close()


async def _exists(admin_dsn: str, name: str) -> bool:
    return bool(await _on_server(admin_dsn, "SELECT 1 FROM pg_database WHERE datname = $1", name))


@asynccontextmanager
async def _database(admin_dsn: str, keep: bool, template: str | None = None) -> AsyncIterator[str]:
    """A database of its own for this run (a copy of `template`, if given)."""
    name = f"bnpl_bench_{os.getpid()}_{secrets.token_hex(3)}"
    copy = f' TEMPLATE "{template}"' if template else ""
    for retry in range(50):  # the template's last sessions may still be closing
        try:
            await _on_server(admin_dsn, f'CREATE DATABASE "{name}"{copy}')
            break
        except asyncpg.ObjectInUseError:
            if retry == 49:
                raise
            await asyncio.sleep(0.2)
    dsn = _with_database(admin_dsn, name)
    try:
        yield dsn
    finally:
        if keep:
            print(f"kept database {dsn}")
        else:
            await _on_server(admin_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@asynccontextmanager
async def _simulator(
    how: str, dsn: str, latency_ms: int, settings: Settings
) -> AsyncIterator[tuple[str, int | None]]:
    """The gateway simulator's URL (and its pid when it is a process of its own)."""
    if how == "in-process":
        db = Database(dsn, min_size=2, max_size=20)
        await db.open()
        server, url = await serve_in_background(create_sandbox_app(db, latency_ms), "127.0.0.1", 0)
        try:
            yield url, None
        finally:
            await stop_server(server)
            await db.close()
        return
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNPL_")} | {
        "BNPL_DATABASE_URL": dsn,
        "BNPL_SANDBOX_LATENCY_MS": str(latency_ms),
        "BNPL_LOG_LEVEL": "WARNING",
        "BNPL_ADMIN_TOKEN": settings.admin_token,
    }
    proc = _spawn([sys.executable, "-m", "bnpl.cli", "sandbox", "--port", str(port)], env)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        async with httpx.AsyncClient() as client:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("the simulator exited")
                with suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/healthz")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise TimeoutError("the simulator did not start")
                await asyncio.sleep(0.2)
        yield url, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def _ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url}: {r.status_code} {r.text}")
    body: dict[str, Any] = r.json()
    return body


@dataclass
class Card:
    consumer_id: str
    payment_method_id: str


async def _set_up(settings: Settings, args: argparse.Namespace, rng: random.Random) -> int:
    """Consumers and cards through the API, plans through the facade; returns the plans."""
    from asgi_lifespan import LifespanManager

    app = create_app(settings)
    async with (
        LifespanManager(app, startup_timeout=120, shutdown_timeout=60),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://bnpl.bench", timeout=60
        ) as api,
    ):
        rt = app.state.runtime
        merchant = await _ok(
            await api.post(
                "/v1/merchants",
                headers=OPERATOR,
                json={
                    "legal_name": "Bench Outdoor LLC",
                    "website": "https://bench.example",
                    "email": "ops@bench.example",
                    "country": "US",
                    "mcc": "5941",
                    "default_currency": "USD",
                    "settlement_account": {
                        "account_number": "000123456789",
                        "routing_number": "110000000",
                    },
                    "config": {"monthly_apr_bps": args.apr_bps},
                },
            ),
            201,
        )
        await rt.bus.drain()
        apr_bps = merchant["config"]["monthly_apr_bps"]

        cards: list[Card] = []
        for n in range(args.consumers):
            email = f"bench{n}-{secrets.token_hex(4)}@example.com"
            consumer = await _ok(
                await api.post(
                    "/v1/consumers",
                    json={
                        "email": email,
                        "phone": "+14155550100",
                        "password": "correct horse battery",
                        "first_name": "Ada",
                        "last_name": "Lovelace",
                        "date_of_birth": "1990-12-10",
                        "address": {
                            "line1": "1 Main St",
                            "city": "Springfield",
                            "region": "IL",
                            "postal_code": "62701",
                            "country": "US",
                        },
                    },
                ),
                201,
            )
            await rt.bus.drain()
            await _ok(
                await api.put(
                    f"/v1/consumers/{consumer['id']}/credit_limit",
                    json={"amount": 100_000_000},
                    headers=OPERATOR,
                )
            )
            tokens = await _ok(
                await api.post(
                    "/v1/auth/login", json={"email": email, "password": "correct horse battery"}
                )
            )
            headers = {"Authorization": f"Bearer {tokens['access_token']}"}
            for _ in range(args.cards_per_consumer):
                pm = await _ok(
                    await api.post(
                        "/v1/me/payment_methods",
                        headers=headers,
                        json={
                            "type": "card",
                            "card": {
                                "number": "4242424242424242",
                                "exp_month": 12,
                                "exp_year": 2030,
                                "cvc": "123",
                            },
                        },
                    ),
                    201,
                )
                cards.append(Card(consumer["id"], pm["id"]))

        now = rt.clock.now()
        amounts = [rng.randint(5_000, 200_000) for _ in range(args.installments)]

        async def make(chunk: range) -> None:
            async with rt.db.transaction() as conn:
                for i in chunk:
                    card = cards[i % len(cards)]
                    plan = await installments.create_plan(
                        conn,
                        checkout_id=new_id("chk"),
                        consumer_id=card.consumer_id,
                        merchant_id=merchant["id"],
                        kind=installments.PlanKind.MONTHLY_6,
                        principal=amounts[i],
                        currency="USD",
                        apr_bps=apr_bps,
                        authorization_date=now.date(),
                        payment_method_id=card.payment_method_id,
                        at=now,
                    )
                    await ledger.post(
                        conn,
                        kind="plan.authorized",
                        reference_id=plan.id,
                        currency="USD",
                        lines=ledger.authorization(amounts[i]),
                        at=now,
                        consumer_id=card.consumer_id,
                        merchant_id=merchant["id"],
                    )

        step = 250
        groups = [
            range(s, min(s + step, args.installments)) for s in range(0, args.installments, step)
        ]
        for first in range(0, len(groups), 4):
            await asyncio.gather(*(make(g) for g in groups[first : first + 4]))
        # What the credit decisions counted against the limits when they approved.
        exposure: dict[str, int] = {}
        for i, amount in enumerate(amounts):
            consumer_id = cards[i % len(cards)].consumer_id
            exposure[consumer_id] = exposure.get(consumer_id, 0) + amount
        async with rt.db.transaction() as conn:
            await conn.executemany(
                "UPDATE credit.accounts SET open_principal = open_principal + $2 "
                "WHERE consumer_id = $1",
                sorted(exposure.items()),
            )
        await rt.bus.drain(timeout=600)
    plans: int = args.installments
    return plans


async def _move_clock_to_first_due(dsn: str) -> date:
    conn = await asyncpg.connect(dsn)
    try:
        due: date = await conn.fetchval(
            "SELECT max(due_date) FROM installments.installments WHERE seq = 1"
        )
        target = datetime.combine(due, clock_time(1), tzinfo=UTC)
        offset_us = (target - datetime.now(UTC)) // timedelta(microseconds=1)
        await conn.execute("UPDATE platform.clock SET offset_us = $1 WHERE id = 1", offset_us)
        # Statistics, as a production database has them (the planner's choices depend on it).
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return due


async def _settings(dsn: str, args: argparse.Namespace) -> Settings:
    """The run's settings, over a migrated database `dsn`."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    base = Settings(
        database_url=dsn,
        admin_token=ADMIN,
        log_json=False,
        log_level="WARNING",
        velocity_max_approvals_24h=1_000_000,
        scheduler_batch_size=args.batch_size,
        db_pool_max=20,
    )
    if args.concurrency is not None:
        base = base.model_copy(update={"collection_concurrency": args.concurrency})
    return base


async def _make_template(
    admin_dsn: str, name: str, args: argparse.Namespace, rng: random.Random
) -> None:
    """`--template`: set up a database called `name` once; later runs copy it (in a second
    instead of a minute), so that runs compared with each other start from the same rows."""
    await _on_server(admin_dsn, f'CREATE DATABASE "{name}"')
    dsn = _with_database(admin_dsn, name)
    base = await _settings(dsn, args)
    async with _simulator(args.simulator, dsn, args.latency_ms, base) as (url, _):
        settings = base.model_copy(update={"providers_url": url})
        await _prepare(settings, args, rng, f", kept as {name}")


async def _prepare(
    settings: Settings, args: argparse.Namespace, rng: random.Random, note: str = ""
) -> int:
    """The set-up, then business time moved to the first due date; how many plans are due."""
    t = time.perf_counter()
    plans = await _set_up(settings, args, rng)
    due = await _move_clock_to_first_due(settings.database_url or "")
    print(f"set-up: {plans} plans due {due} in {time.perf_counter() - t:.1f} s{note}")
    return plans


async def _plan_count(dsn: str) -> int:
    """Plans in a copied template: one installment of each is due, as `_prepare` left it."""
    conn = await asyncpg.connect(dsn)
    try:
        plans: int = await conn.fetchval("SELECT count(*) FROM installments.plans")
    finally:
        await conn.close()
    return plans


# --------------------------------------------------------------------------- the run


Batch = tuple[int, float]  # (claims, seconds)


@dataclass
class Run:
    settled: int
    claimed: int
    seconds: float
    batches: list[Batch]
    cpu_collectors: float
    cpu_simulator: float
    cpu_postgres: float  # the server processes of this database (0 if not on this machine)


async def _backend_cpu(db: Database) -> dict[int, float]:
    """CPU seconds of each PostgreSQL server process serving this database (local only)."""
    pids = await db.fetch("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")
    return {r["pid"]: _cpu_seconds(r["pid"]) for r in pids}


async def _collect_batches(
    settings: Settings, around: Callable[[list[Batch]], Awaitable[object]]
) -> list[Batch]:
    """One worker's part of the run: `run_due` in batches until nothing is left to claim.

    `around(batches)` runs once everything is connected, before the first batch, and again
    after the last one, before disconnecting (for readings, or to wait for a signal)."""
    async with start_platform(settings, Roles(workers=False, migrate=False)) as rt:
        tune_for_service()  # as `bnpl worker` does once it has started
        work = next(w for w in rt.scheduler.works if w.name == "installments.collect")
        batches: list[Batch] = []
        await around(batches)
        while True:
            t = time.perf_counter()
            done = await work.run_due(rt.db, rt.clock.now(), settings.scheduler_batch_size)
            if done == 0:
                break
            batches.append((done, time.perf_counter() - t))
        await around(batches)
        return batches


async def _collector_process() -> None:
    """`--collector`: one of several worker processes sharing the run (settings from env)."""
    cpu: list[float] = []

    async def around(batches: list[Batch]) -> None:
        if not cpu:  # ready: wait for every collector's start signal
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            cpu.append(_own_cpu_seconds())
        else:  # done: report, and stay connected until the readings are taken
            report = {"batches": batches, "cpu": _own_cpu_seconds() - cpu[0]}
            print(json.dumps(report), flush=True)
            await asyncio.to_thread(sys.stdin.readline)

    await _collect_batches(Settings(), around)


def _spawn_collectors(settings: Settings, workers: int) -> list[subprocess.Popen[str]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNPL_")} | {
        "BNPL_DATABASE_URL": settings.database_url or "",
        "BNPL_PROVIDERS_URL": settings.providers_url or "",
        "BNPL_ADMIN_TOKEN": settings.admin_token,
        "BNPL_SCHEDULER_BATCH_SIZE": str(settings.scheduler_batch_size),
        "BNPL_COLLECTION_CONCURRENCY": str(settings.collection_concurrency),
        "BNPL_DB_POOL_MAX": str(settings.db_pool_max),
        "BNPL_LOG_LEVEL": "WARNING",
        "BNPL_LOG_JSON": "false",
    }
    return [
        subprocess.Popen(
            [sys.executable, __file__, "--collector"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]


async def _collect(settings: Settings, simulator_pid: int | None, workers: int) -> Run:
    """The run, by this process (one worker) or by `workers` worker processes at once."""
    db = Database(settings.database_url or "", min_size=1, max_size=2)
    await db.open()
    helpers = _spawn_collectors(settings, workers) if workers > 1 else []
    try:
        for helper in helpers:
            assert helper.stdout is not None
            if (await asyncio.to_thread(helper.stdout.readline)).strip() != "ready":
                raise RuntimeError("a collector process did not start")
        readings: list[tuple[float, float, float, dict[int, float]]] = []

        async def read(_: object = None) -> None:  # wall, own, simulator, database CPU
            readings.append(
                (
                    time.perf_counter(),
                    _own_cpu_seconds(),
                    _cpu_seconds(simulator_pid) if simulator_pid else 0.0,
                    await _backend_cpu(db),
                )
            )

        batches: list[Batch] = []
        if helpers:
            await read()
            for helper in helpers:
                assert helper.stdin is not None
                helper.stdin.write("go\n")
                helper.stdin.flush()
            cpu_collectors = 0.0
            for helper in helpers:
                assert helper.stdout is not None
                report = json.loads(await asyncio.to_thread(helper.stdout.readline))
                batches += [(int(n), float(t)) for n, t in report["batches"]]
                cpu_collectors += report["cpu"]
            await read()
            for helper in helpers:
                await asyncio.to_thread(helper.communicate, "bye\n")
        else:
            batches = await _collect_batches(settings, read)
            cpu_collectors = readings[1][1] - readings[0][1]
        (start, _, sim0, pg0), (end, _, sim1, pg1) = readings
        seconds = end - start
        cpu_sim = sim1 - sim0
        cpu_pg = sum(cpu - pg0.get(pid, 0.0) for pid, cpu in pg1.items())
        settled = await db.fetchval(
            "SELECT count(*) FROM installments.installments WHERE status = 'paid'"
        )
    finally:
        for helper in helpers:
            if helper.poll() is None:
                helper.kill()
                helper.wait()
        await db.close()
    return Run(
        int(settled),
        sum(n for n, _ in batches),
        seconds,
        batches,
        cpu_collectors,
        cpu_sim,
        cpu_pg,
    )


async def _check(settings: Settings, expected: int) -> list[str]:
    """What went wrong (nothing, normally): charges, payments, the ledger."""
    problems = []
    async with start_platform(settings, Roles(workers=False, migrate=False)) as rt:
        row = await rt.db.fetchrow(
            """
            SELECT
              (SELECT count(*) FROM sandbox.charges WHERE status = 'captured') AS captured,
              (SELECT count(*) FROM payments.payments WHERE status = 'succeeded') AS succeeded,
              (SELECT count(*) FROM payments.payments WHERE status <> 'succeeded') AS other,
              (SELECT count(*) FROM installments.installments
               WHERE seq = 1 AND status <> 'paid') AS unpaid
            """
        )
        assert row is not None
        if row["captured"] != expected or row["succeeded"] != expected:
            problems.append(f"{expected} due, {row['captured']} captured, {row['succeeded']} paid")
        if row["other"] or row["unpaid"]:
            problems.append(f"{row['other']} payments not succeeded, {row['unpaid']} unpaid")
        verification = await ledger.verify(rt.db)
        problems += [f"ledger {c.name}: {c.detail}" for c in verification.checks if not c.ok]
    return problems


def _machine_reference() -> float:
    """Seconds this machine takes for ten million pure-Python additions (best of three): its
    speed drifts from run to run and day to day, so figures are read beside this one."""
    best = float("inf")
    for _ in range(3):
        started, total = time.perf_counter(), 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - started)
    return best


def _processor() -> str:
    """What /proc/cpuinfo says the first CPU is: the same commands give different figures on
    different hosts, so a figure is read beside it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown processor"
    fields = dict(
        (key.strip(), value.strip())
        for key, _, value in (line.partition(":") for line in text.split("\n\n")[0].splitlines())
    )
    return ", ".join(
        f"{label}{fields[key]}"
        for key, label in (
            ("model name", ""),
            ("cpu family", "family "),
            ("model", "model "),
            ("cpu MHz", "MHz "),
            ("cache size", "cache "),
        )
        if key in fields
    )


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--installments", type=int, default=10_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=None, help="default: the setting's")
    parser.add_argument("--latency-ms", type=int, default=5, help="simulator latency per call")
    parser.add_argument("--simulator", choices=["process", "in-process"], default="process")
    parser.add_argument("--consumers", type=int, default=20)
    parser.add_argument("--cards-per-consumer", type=int, default=10)
    parser.add_argument("--database-url", default=None, help="an admin DSN of the server")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--template",
        default=None,
        help="copy this database instead of setting one up (made by the first run that names it)",
    )
    parser.add_argument("--seed", type=int, default=20250611)
    parser.add_argument(
        "--apr-bps", type=int, default=1999, help="the plans' APR (0: no interest to book)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the run (1: this one)"
    )
    parser.add_argument("--collector", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.collector:
        await _collector_process()
        return

    import logging

    logging.basicConfig(level=logging.WARNING)
    rng = random.Random(args.seed)
    admin_dsn = _admin_dsn(args.database_url)
    template = args.template
    if template is not None and not await _exists(admin_dsn, template):
        await _make_template(admin_dsn, template, args, rng)
    async with _database(admin_dsn, args.keep, template) as dsn:
        base = await _settings(dsn, args)
        async with _simulator(args.simulator, dsn, args.latency_ms, base) as (url, sim_pid):
            settings = base.model_copy(update={"providers_url": url})
            if template is None:
                plans = await _prepare(settings, args, rng)
            else:
                plans = await _plan_count(dsn)
                print(f"set-up: {plans} due plans, copied from database {template}")
            reference = _machine_reference()
            run = await _collect(settings, sim_pid, args.workers)
            problems = await _check(settings, plans)

    rates = [n / s for n, s in run.batches]
    latencies = [s for _, s in run.batches]
    print(
        f"simulator: {args.simulator}, latency {args.latency_ms} ms; worker processes "
        f"{args.workers}, batch size {args.batch_size}, concurrency "
        f"{settings.collection_concurrency} per worker, db pool {settings.db_pool_max}"
    )
    print(
        f"collected {run.settled} of {plans} due installments ({run.claimed} claims, "
        f"{len(run.batches)} batches) in {run.seconds:.2f} s: "
        f"{run.settled / run.seconds:,.0f} installments/s"
    )
    if latencies:
        print(
            f"batch latency p50 {_percentile(latencies, 0.5) * 1000:.0f} ms, "
            f"p99 {_percentile(latencies, 0.99) * 1000:.0f} ms; per-batch rate median "
            f"{statistics.median(rates):,.0f}/s"
        )
    sim_cpu = f", simulator {run.cpu_simulator:.1f} s" if sim_pid else ""
    total = run.cpu_collectors + run.cpu_simulator + run.cpu_postgres
    print(
        f"cpu: collectors {run.cpu_collectors:.1f} s{sim_cpu}, postgres {run.cpu_postgres:.1f} s; "
        f"{total / max(run.settled, 1) * 1000:.2f} ms of CPU per installment "
        f"({os.cpu_count()} cores, {run.seconds:.1f} s wall, load {os.getloadavg()[0]:.1f})"
    )
    print(
        f"machine: 10 million pure-Python additions in {reference:.2f} s (best of three); "
        + _processor()
    )
    print("checks: " + ("; ".join(problems) if problems else "all paid once, ledger verified"))
    if problems:
        raise SystemExit(1)


if __name__ == "__main__":
    import uvloop

    uvloop.run(main())  # as `bnpl worker` runs its loop
