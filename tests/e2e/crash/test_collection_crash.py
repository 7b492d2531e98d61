"""Autopay survives workers killed at random moments: every due installment is charged once.

Set-up, in a database of its own: monthly_6 plans on 4242 cards (a few bought through the API,
the rest created through the installments facade exactly as an authorization leaves them:
plan, schedule, planned collection, `plan.authorized` ledger entry, credit exposure). The card
gateway simulator runs as a separate `bnpl sandbox` process that keeps its charges in the same
PostgreSQL (schema `sandbox`), so it outlives every worker kill.

Crash loop (seeded): business time is moved to the next due date, so one installment of every
plan falls due; a `bnpl worker` is started and SIGKILLed 50-800 ms later, again and again (a
short lease lets a restarted worker take over what a killed one had claimed). Once a month is
fully collected, the loop ends if it has killed at least `MIN_KILLS` workers, and otherwise
moves on to the next month (so a fast machine collects more months, a slow one fewer; at most
six). Then a worker started normally (`python -m bnpl.cli worker`) finishes what is left
(events still to deliver) and is stopped with SIGTERM.

What it proves: every installment that fell due is paid exactly once, the others untouched;
the simulator captured exactly one charge per due installment, for its amount, under the key
of a succeeded payment (no key reused, no second capture for an installment, no refund of an
over-payment); every payment succeeded with its attempts on record; each event was written
once; credit exposure is what the plans still owe; and the ledger verifies (trial balance,
receivables = what the plans owe). It also checks that kills did land in both dangerous
windows: a charge recorded but not sent, and a charge captured by the gateway but not settled.

The workers are forked from a process that imported the platform once (`forkserver.py`):
starting Python and importing lightgbm takes seconds, a fork takes milliseconds.
"""

from __future__ import annotations

import asyncio
import os
import random
import select
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import IO, Any

import asyncpg
import httpx
from asgi_lifespan import LifespanManager

from bnpl import installments, ledger
from bnpl.app import create_app
from bnpl.bench.platform import free_port
from bnpl.bootstrap import Roles
from bnpl.config import Settings
from bnpl.kit.ids import new_id
from bnpl.kit.migrate import migrate
from tests.support import Api, ConsumerHandle, fresh_database

SEED = int(os.environ.get("BNPL_CRASH_SEED", "20250611"))
PLANS = 300
API_PURCHASES = 12  # of them bought through the API, the rest made through the facade
CONSUMERS = 6
MONTHS = 6
MIN_KILLS = 50
KILL_AFTER_S = (0.05, 0.8)
LOOP_BUDGET_S = 150.0
SANDBOX_LATENCY_MS = 3
# Small batches and a short lease: many commits per worker life, quick take-overs, and leases
# that run out while their worker is still at it (the other worker then re-sends the charge).
WORKER_SETTINGS = {
    "BNPL_SCHEDULER_INTERVAL_S": "0.05",
    "BNPL_SCHEDULER_BATCH_SIZE": "20",
    "BNPL_COLLECTION_CONCURRENCY": "8",
    "BNPL_COLLECTION_LEASE_S": "0.5",
    "BNPL_DB_POOL_MAX": "10",
}
FORKSERVER = Path(__file__).with_name("forkserver.py")


# --------------------------------------------------------------------------- processes


def _stop(proc: subprocess.Popen[Any], how: signal.Signals = signal.SIGKILL) -> int | None:
    if proc.poll() is None:
        with suppress(ProcessLookupError):
            proc.send_signal(how)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
    return proc.returncode


class ForkServer:
    """Talks to `forkserver.py`: forks `bnpl worker` processes, reaps them."""

    def __init__(self, env: dict[str, str], log: IO[bytes]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(FORKSERVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            env=env,
            text=True,
            bufsize=1,
        )

    def _answer(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError("the fork server did not answer")
        line = self.proc.stdout.readline().strip()
        if not line or line.startswith("error"):
            raise RuntimeError(f"fork server: {line or 'exited'}")
        return line

    def _ask(self, command: str, timeout: float = 10.0) -> str:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self._answer(timeout)

    def wait_ready(self, timeout: float) -> None:
        assert self._answer(timeout) == "ready"

    def spawn(self, *args: str) -> int:
        return int(self._ask("spawn " + " ".join(args)))

    def reap(self, pid: int) -> int:
        return int(self._ask(f"reap {pid}"))

    def close(self) -> None:
        if self.proc.stdin is not None:
            with suppress(OSError):
                self.proc.stdin.close()  # the server kills its children and exits
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        _stop(self.proc)


def _wait_http(url: str, proc: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the sandbox simulator exited"
        with suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not come up")


class Processes:
    """Every process the test starts (`bnpl` commands), killed at the end whatever happens."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.env = env
        self.logs = logs
        self.started: list[subprocess.Popen[Any]] = []

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> Path:
        log = self.logs / f"{name}.log"
        with open(log, "wb") as out:
            self.started.append(
                subprocess.Popen(
                    [sys.executable, "-m", "bnpl.cli", *args],
                    env=env or self.env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        return log

    def fork_server(self, env: dict[str, str]) -> ForkServer:
        with open(self.logs / "workers.log", "wb") as out:
            forks = ForkServer(env, out)
        self.started.append(forks.proc)
        return forks

    @property
    def last(self) -> subprocess.Popen[Any]:
        return self.started[-1]


@contextmanager
def _processes(env: dict[str, str], logs: Path) -> Iterator[Processes]:
    processes = Processes(env, logs)
    try:
        yield processes
    finally:
        for proc in reversed(processes.started):
            _stop(proc)


@asynccontextmanager
async def _platform(settings: Settings, roles: Roles = Roles()) -> AsyncIterator[Api]:
    app = create_app(settings, roles)
    async with LifespanManager(app, startup_timeout=60, shutdown_timeout=30):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bnpl.test") as c:
            yield Api(c, app.state.runtime, settings.admin_token)


# --------------------------------------------------------------------------- set-up


async def _buy(
    api: Api, merchant_secret: str, consumer: ConsumerHandle, pm: str, amount: int
) -> str:
    merchant = {"Authorization": f"Bearer {merchant_secret}"}
    r = await api.client.post(
        "/v1/checkouts", json={"amount": amount, "currency": "USD"}, headers=merchant
    )
    assert r.status_code == 201, r.text
    checkout_id = r.json()["id"]
    r = await api.client.post(
        f"/v1/checkouts/{checkout_id}/confirm",
        json={"plan": "monthly_6", "payment_method_id": pm},
        headers=consumer.headers,
    )
    assert r.status_code == 200 and r.json()["status"] == "authorized", r.text
    r = await api.client.post(f"/v1/checkouts/{checkout_id}/capture", json={}, headers=merchant)
    assert r.status_code == 200, r.text
    plan_id: str = r.json()["plan_id"]
    return plan_id


async def _set_up_plans(api: Api, rng: random.Random) -> None:
    merchant = await api.active_merchant(config={"monthly_apr_bps": 1999})
    consumers = [await api.consumer() for _ in range(CONSUMERS)]
    cards = {}
    for consumer in consumers:
        r = await api.client.put(
            f"/v1/consumers/{consumer.id}/credit_limit",
            json={"amount": 100_000_000},
            headers=api.operator,
        )
        assert r.status_code == 200, r.text
        cards[consumer.id] = await api.add_card(consumer)

    bought = [
        await _buy(
            api,
            merchant.secret,
            consumers[i % CONSUMERS],
            cards[consumers[i % CONSUMERS].id],
            rng.randint(5_000, 200_000),
        )
        for i in range(API_PURCHASES)
    ]
    r = await api.client.get(f"/v1/plans/{bought[0]}", headers=api.operator)
    apr_bps = r.json()["apr_bps"]

    # The rest as an authorization leaves them, minus the checkout row (not collections').
    now = api.rt.clock.now()
    async with api.rt.db.transaction() as conn:
        for i in range(PLANS - API_PURCHASES):
            consumer = consumers[i % CONSUMERS]
            amount = rng.randint(5_000, 200_000)
            plan = await installments.create_plan(
                conn,
                checkout_id=new_id("chk"),
                consumer_id=consumer.id,
                merchant_id=merchant.id,
                kind=installments.PlanKind.MONTHLY_6,
                principal=amount,
                currency="USD",
                apr_bps=apr_bps,
                authorization_date=now.date(),
                payment_method_id=cards[consumer.id],
                at=now,
            )
            await ledger.post(
                conn,
                kind="plan.authorized",
                reference_id=plan.id,
                currency="USD",
                lines=ledger.authorization(amount),
                at=now,
                consumer_id=consumer.id,
                merchant_id=merchant.id,
            )
            # What the credit decision counts against the limit when it approves.
            await conn.execute(
                "UPDATE credit.accounts SET open_principal = open_principal + $2 "
                "WHERE consumer_id = $1",
                consumer.id,
                amount,
            )
    await api.settle()


# --------------------------------------------------------------------------- observations


async def _move_to_month(conn: asyncpg.Connection, month: int) -> date:
    """Business time to 01:00 on the day installment `month` of every plan is due."""
    due: date = await conn.fetchval(
        "SELECT max(due_date) FROM installments.installments WHERE seq = $1", month
    )
    target = datetime.combine(due, clock_time(1), tzinfo=UTC)
    offset_us = (target - datetime.now(UTC)) // timedelta(microseconds=1)
    await conn.execute(
        "UPDATE platform.clock SET offset_us = GREATEST(offset_us, $1) WHERE id = 1", offset_us
    )
    return due


async def _outstanding(conn: asyncpg.Connection, due_through: date) -> tuple[int, int]:
    """(installments due and unpaid on open plans, payments still processing)."""
    row = await conn.fetchrow(
        """
        SELECT
          (SELECT count(*) FROM installments.installments i
           JOIN installments.plans p ON p.id = i.plan_id
           WHERE p.status IN ('active', 'delinquent') AND i.status IN ('scheduled', 'late')
             AND i.due_date <= $1) AS unpaid,
          (SELECT count(*) FROM payments.payments WHERE status = 'processing') AS processing
        """,
        due_through,
    )
    assert row is not None
    return int(row["unpaid"]), int(row["processing"])


async def _in_flight(conn: asyncpg.Connection) -> tuple[int, int]:
    """What a kill left in flight: (recorded but not at the gateway, captured but unsettled)."""
    row = await conn.fetchrow(
        """
        SELECT count(*) FILTER (WHERE c.id IS NULL) AS unsent,
               count(*) FILTER (WHERE c.status = 'captured') AS charged
        FROM payments.payments p
        JOIN installments.plans pl ON pl.collection_payment_id = p.id
        LEFT JOIN sandbox.charges c
               ON c.idempotency_key = p.gateway_key || '.' || pl.collection_attempt
        WHERE p.status = 'processing'
        """
    )
    assert row is not None
    return int(row["unsent"]), int(row["charged"])


async def _bus_caught_up(conn: asyncpg.Connection) -> bool:
    row = await conn.fetchrow(
        """
        SELECT (SELECT last_position FROM messaging.sequencer WHERE id = 1) AS head,
               EXISTS (SELECT 1 FROM messaging.events WHERE position IS NULL) AS unsequenced,
               (SELECT min(position) FROM messaging.cursors) AS slowest
        """
    )
    assert row is not None
    return not row["unsequenced"] and (row["slowest"] is None or row["slowest"] >= row["head"])


# --------------------------------------------------------------------------- proofs


async def _prove_collected_once(conn: asyncpg.Connection, months: int) -> int:
    """Every installment up to `months` paid once (and charged once); returns the charges."""
    due = PLANS * months
    plans = await conn.fetch("SELECT id, status FROM installments.plans")
    assert len(plans) == PLANS
    assert {p["status"] for p in plans} == {"paid_off" if months == MONTHS else "active"}

    items = await conn.fetch(
        "SELECT plan_id, seq, principal + interest + fees AS amount, status, "
        "principal_paid + interest_paid + fees_paid AS paid, "
        "principal_paid = principal AND interest_paid = interest AND fees_paid = fees AS settled "
        "FROM installments.installments"
    )
    assert len(items) == PLANS * MONTHS
    assert all(i["status"] == "paid" and i["settled"] for i in items if i["seq"] <= months)
    assert all(i["status"] == "scheduled" and i["paid"] == 0 for i in items if i["seq"] > months)

    payments = await conn.fetch(
        "SELECT id, plan_id, kind, amount, status, gateway_key FROM payments.payments"
    )
    assert Counter(p["kind"] for p in payments) == {"installment": due}, (
        "no refund of an over-payment, no other kind of payment"
    )
    assert Counter(p["status"] for p in payments) == {"succeeded": due}
    by_key = {p["gateway_key"]: p for p in payments}

    attempts = await conn.fetch(
        "SELECT payment_id, outcome FROM payments.attempts ORDER BY payment_id, n"
    )
    outcomes: dict[str, list[str]] = {}
    for a in attempts:
        outcomes.setdefault(a["payment_id"], []).append(a["outcome"])
    for p in payments:
        assert outcomes.get(p["id"], [])[-1:] == ["succeeded"], (p["id"], outcomes.get(p["id"]))

    # The gateway's own record: one captured charge per installment, under a succeeded
    # payment's key, for its amount; per plan, exactly the amounts of its due installments.
    charges = await conn.fetch("SELECT idempotency_key, amount, status FROM sandbox.charges")
    assert Counter(c["status"] for c in charges) == {"captured": due}
    charged: Counter[str] = Counter()
    amounts: dict[str, Counter[int]] = {}
    for c in charges:
        payment_key, _, attempt = c["idempotency_key"].rpartition(".")
        assert attempt.isdigit(), c["idempotency_key"]
        payment = by_key[payment_key]
        assert c["amount"] == payment["amount"]
        charged[payment["id"]] += 1
        amounts.setdefault(payment["plan_id"], Counter())[c["amount"]] += 1
    assert set(charged.values()) == {1} and len(charged) == len(payments)
    owed: dict[str, Counter[int]] = {}
    for i in items:
        if i["seq"] <= months:
            owed.setdefault(i["plan_id"], Counter())[i["amount"]] += 1
    assert amounts == owed

    # Each settlement happened once: one event per payment and per installment.
    events = Counter(
        {
            r["type"]: r["n"]
            for r in await conn.fetch(
                "SELECT type, count(*) AS n FROM messaging.events "
                "WHERE type IN ('payment.succeeded', 'payment.failed', 'installment.paid', "
                "'plan.paid_off') GROUP BY type"
            )
        }
    )
    expected = {"payment.succeeded": due, "installment.paid": due}
    if months == MONTHS:
        expected["plan.paid_off"] = PLANS
    assert events == expected
    # The credit exposure released by the payments is exactly what was paid.
    exposure = await conn.fetchval("SELECT sum(open_principal) FROM credit.accounts")
    unpaid = await conn.fetchval(
        "SELECT sum(principal - principal_paid) FROM installments.installments"
    )
    assert exposure == unpaid
    return len(charges)


async def _prove_ledger(settings: Settings) -> None:
    async with _platform(settings, Roles(workers=False, migrate=False)) as api:
        r = await api.client.get("/v1/ledger/verify", headers=api.operator)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["ok"], body
        names = {c["name"] for c in body["checks"] if c["ok"]}
        assert {"ledger.trial_balance_zero", "installments.receivables"} <= names, body


# --------------------------------------------------------------------------- the test


async def test_killed_workers_never_charge_an_installment_twice(
    postgres_server: str, settings: Settings, tmp_path: Path
) -> None:
    rng = random.Random(SEED)
    async with fresh_database(postgres_server, "bnpl_crash") as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate(conn)
            await _crash_and_prove(conn, dsn, settings, tmp_path, rng)
        finally:
            await conn.close()


async def _crash_and_prove(
    conn: asyncpg.Connection,
    dsn: str,
    settings: Settings,
    tmp_path: Path,
    rng: random.Random,
) -> None:
    port = free_port()
    providers_url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("BNPL_")} | {
        "BNPL_DATABASE_URL": dsn,
        "BNPL_ADMIN_TOKEN": settings.admin_token,
        "BNPL_LOG_JSON": "false",
        "BNPL_LOG_LEVEL": "WARNING",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
    }
    if settings.redis_url:
        env["BNPL_REDIS_URL"] = settings.redis_url
    if settings.encryption_key:
        env["BNPL_ENCRYPTION_KEY"] = settings.encryption_key
    worker_env = env | WORKER_SETTINGS | {"BNPL_PROVIDERS_URL": providers_url}
    own = settings.model_copy(
        update={"database_url": dsn, "providers_url": None, "velocity_max_approvals_24h": 1000}
    )

    with _processes(env, tmp_path) as processes:
        # Slow to start (imports): launched first, they get ready while the plans are made.
        processes.start(
            "sandbox",
            "sandbox",
            "--port",
            str(port),
            env=env | {"BNPL_SANDBOX_LATENCY_MS": str(SANDBOX_LATENCY_MS)},
        )
        sandbox = processes.last
        forks = processes.fork_server(worker_env)
        try:
            async with _platform(own) as api:  # in-process simulators, same database
                await _set_up_plans(api, rng)
            planned = await conn.fetch(
                "SELECT DISTINCT p.collection_due_at = (i.due_date::timestamp AT TIME ZONE 'UTC') "
                "AS planned FROM installments.plans p "
                "JOIN installments.installments i ON i.plan_id = p.id AND i.seq = 1"
            )
            assert [r["planned"] for r in planned] == [True], "every plan's autopay planned"
            await asyncio.to_thread(_wait_http, f"{providers_url}/healthz", sandbox, 60.0)
            await asyncio.to_thread(forks.wait_ready, 60.0)

            kills, months, windows = await _crash_loop(conn, forks, rng, tmp_path)
        finally:
            forks.close()

        # A worker started the ordinary way takes over from the last killed one and finishes.
        log = processes.start("worker", "worker", env=worker_env)
        final = processes.last
        due_through: date = await conn.fetchval(
            "SELECT max(due_date) FROM installments.installments WHERE seq = $1", months
        )
        deadline = time.monotonic() + 120
        while (
            b"BNPL worker running" not in log.read_bytes()
            or await _outstanding(conn, due_through) != (0, 0)
            or not await _bus_caught_up(conn)
        ):
            assert final.poll() is None, f"the worker exited; see {log}"
            assert time.monotonic() < deadline, f"the last worker did not finish; see {log}"
            await asyncio.sleep(0.2)
        assert _stop(final, signal.SIGTERM) == 0, f"the worker did not stop cleanly; see {log}"

        charges = await _prove_collected_once(conn, months)
        dead = await conn.fetchval("SELECT count(*) FROM messaging.dead_letters")
        assert dead == 0, "a consumer gave up on an event"
        await _prove_ledger(own.model_copy(update={"providers_url": providers_url}))
        print(
            f"\ncrash test: seed {SEED}, {PLANS} plans, {months} months, {charges} installments "
            f"collected once, {kills} workers killed; kills left {dict(windows)}"
        )
        # The kills did hit both dangerous moments (not only idle workers).
        assert windows["recorded, not sent"] > 0 and windows["captured, not settled"] > 0


async def _crash_loop(
    conn: asyncpg.Connection, forks: ForkServer, rng: random.Random, logs: Path
) -> tuple[int, int, Counter[str]]:
    """Start and SIGKILL `MIN_KILLS` workers, two alive at a time (each is started while the
    previous one still runs, and killed after it), moving to the next month whenever one is
    collected; returns (kills, the month reached, what the kills left behind)."""
    month = 1
    due_through = await _move_to_month(conn, month)
    kills = 0
    windows: Counter[str] = Counter()
    deadline = time.monotonic() + LOOP_BUDGET_S
    running = forks.spawn("worker")
    try:
        while kills < MIN_KILLS:
            started = forks.spawn("worker")
            await asyncio.sleep(rng.uniform(*KILL_AFTER_S))
            os.kill(running, signal.SIGKILL)
            status = forks.reap(running)
            running = started
            assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL, (
                f"a worker exited by itself ({status}); see {logs}"
            )
            kills += 1
            unsent, captured = await _in_flight(conn)
            windows["recorded, not sent"] += unsent > 0
            windows["captured, not settled"] += captured > 0
            left = await _outstanding(conn, due_through)
            if os.environ.get("BNPL_CRASH_VERBOSE"):
                print(f"kill {kills}: month {month}, (unpaid, processing) {left}")
            if left != (0, 0):
                windows["work left"] += 1
            elif month < MONTHS and kills < MIN_KILLS:
                month += 1
                due_through = await _move_to_month(conn, month)
            assert time.monotonic() < deadline, f"{kills} kills took too long; see {logs}"
    finally:
        with suppress(ProcessLookupError):
            os.kill(running, signal.SIGKILL)
        forks.reap(running)
    kills += 1
    return kills, month, windows
