"""The open-loop purchase load.

Purchase `i` starts at `start + i / rate` whatever the earlier ones are doing, so a slow
platform cannot slow the load down and queueing shows in the latencies instead of hiding in a
lower rate. A purchase is a checkout created by a merchant, confirmed by a consumer and
captured by the merchant; its latency is the sum of its three requests'. Around it, the mix
(`Mix`): monthly plans besides pay-in-4, declines (an amount over the credit limit, the
`Risky` persona), partial refunds of captured checkouts, plan reads and rare logins (each an
argon2 hash), and the token refreshes a long run needs (access tokens live 15 minutes).

What is measured: the requests of the purchases due in the window `[start + warmup,
start + warmup + duration)`, each from just before it is sent to its last byte (µs, kept raw
and put into HDR histograms after the run, so recording costs the generator nothing while it
runs); the purchases completed in that window; CPU and memory of the watched processes
between its two ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import time
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from bnpl.bench import procstat
from bnpl.bench.http import Http, PyreqwestError, problem_code
from bnpl.bench.seed import Fixtures

CREATE: Final = "POST /v1/checkouts"
CONFIRM: Final = "POST /v1/checkouts/{id}/confirm"
CAPTURE: Final = "POST /v1/checkouts/{id}/capture"
REFUND: Final = "POST /v1/checkouts/{id}/refunds"
PLAN: Final = "GET /v1/plans/{id}"
MY_PLANS: Final = "GET /v1/me/plans"
LOGIN: Final = "POST /v1/auth/login"
REFRESH: Final = "POST /v1/auth/refresh"
ENDPOINTS: Final = (CREATE, CONFIRM, CAPTURE, REFUND, PLAN, MY_PLANS, LOGIN, REFRESH)

REFRESH_AFTER_S: Final = 12 * 60  # access tokens live 15 minutes
PROGRESS_EVERY_S: Final = 5.0
DRAIN_TIMEOUT_S: Final = 60.0  # how long purchases still running at the end are waited for
OVER_LIMIT_AMOUNT: Final = 150_000  # > the default credit limit (100,000), < pay_in_4's max


@dataclass(frozen=True, slots=True)
class Mix:
    """Shares of the purchase mix (each drawn per purchase, from the run's seeded RNG)."""

    monthly_6: float = 0.12
    monthly_12: float = 0.08  # the rest is pay_in_4
    over_limit: float = 0.01  # pay_in_4 of 1,500.00: declined `insufficient_credit_limit`
    risky: float = 0.01  # consumers seeded as the `Risky` persona (their confirms decline)
    refund: float = 0.02  # captured purchases partly refunded right after
    plan_read: float = 0.05  # the consumer reads the new plan
    my_plans: float = 0.03  # the consumer lists their plans
    login: float = 0.002  # a consumer logs in (argon2: kept rare)


@dataclass
class Outcomes:
    """What the purchases due in the measured window came to."""

    sent: int = 0
    captured: int = 0
    declined: int = 0
    failed: int = 0
    unfinished: int = 0


@dataclass
class RunResult:
    rate: float
    warmup_s: float
    duration_s: float
    latencies: dict[str, array[int]]  # µs per endpoint, measured window
    purchases: array[int]  # µs per captured purchase (sum of its three requests)
    lateness: array[int]  # µs each measured purchase started after its due time
    outcomes: Outcomes
    completed_in_window: int  # purchases captured within the window, whenever due
    errors: Counter[str]  # "<endpoint> <status> <code>" -> count, measured window
    warmup_errors: int
    usage: list[procstat.Usage] = field(default_factory=list)
    rss_peak: dict[str, int] = field(default_factory=dict)
    machine_busy: float | None = None  # share of the machine's CPU time, in the window
    window_wall: tuple[datetime, datetime] | None = None  # the measured window, wall clock

    @property
    def requests(self) -> int:
        return sum(len(v) for v in self.latencies.values())

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def purchases_per_s(self) -> float:
        return self.completed_in_window / self.duration_s


class _Run:
    """The state of one open-loop run (one rate)."""

    def __init__(self, window: tuple[float, float]) -> None:
        self.window = window
        self.latencies: dict[str, array[int]] = {name: array("q") for name in ENDPOINTS}
        self.purchases: array[int] = array("q")
        self.lateness: array[int] = array("q")
        self.outcomes = Outcomes()
        self.errors: Counter[str] = Counter()
        self.warmup_errors = 0
        self.completed_in_window = 0
        self.completed_total = 0
        self.sent_total = 0
        self.in_flight = 0
        self.recent: list[int] = []  # request latencies since the last progress line

    def measured(self, slot: float) -> bool:
        return self.window[0] <= slot < self.window[1]

    def error_total(self) -> int:
        return sum(self.errors.values()) + self.warmup_errors


class Generator:
    """Drives purchases against one platform with the seeded merchants and consumers."""

    def __init__(
        self,
        http: Http,
        fixtures: Fixtures,
        *,
        seed: int,
        mix: Mix = Mix(),
        refresh_after_s: float = REFRESH_AFTER_S,
        log: Callable[[str], None],
    ) -> None:
        self.http = http
        self.refresh_after_s = refresh_after_s
        self.fixtures = fixtures
        self.mix = mix
        self.log = log
        self.rng = random.Random(seed)
        consumers = fixtures.consumers
        # Consumers in a seeded random order, each used once before any is used again; the
        # order goes on from one run to the next (the steps of --find-max).
        self.order = list(range(len(consumers)))
        self.rng.shuffle(self.order)
        self.next_consumer = 0
        self.next_purchase = 0
        self.refreshing: dict[int, asyncio.Future[bool]] = {}
        self.tasks: set[asyncio.Task[None]] = set()

    # -- one purchase ----------------------------------------------------------------------

    async def _call(
        self,
        run: _Run,
        measured: bool,
        endpoint: str,
        method: str,
        path: str,
        authorization: str | None,
        body: bytes | None,
        expect: int,
    ) -> tuple[bool, Any, int]:
        """Send one request; record its latency (µs) and any error. (ok, raw body, µs)."""
        sent = time.perf_counter()
        try:
            status, raw = await self.http.send(method, path, authorization, body)
        except PyreqwestError as exc:
            status, raw, code = 0, None, type(exc).__name__
        else:
            code = ""
        took = int((time.perf_counter() - sent) * 1_000_000)
        run.recent.append(took)
        ok = status == expect
        if measured:
            run.latencies[endpoint].append(took)
            if not ok:
                run.errors[f"{endpoint} {status} {code or problem_code(raw)}"] += 1
        elif not ok:
            run.warmup_errors += 1
        return ok, raw, took

    async def _refresh(self, run: _Run, measured: bool, c: int) -> bool:
        """Rotate consumer `c`'s tokens once, however many purchases wait for it."""
        waiting = self.refreshing.get(c)
        if waiting is not None:
            return await waiting
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self.refreshing[c] = future
        consumers = self.fixtures.consumers
        try:
            body = orjson.dumps({"refresh_token": consumers.refresh_tokens[c]})
            ok, raw, _ = await self._call(
                run, measured, REFRESH, "POST", "/v1/auth/refresh", None, body, 200
            )
            if ok:
                pair = orjson.loads(memoryview(raw))
                consumers.authorization[c] = f"Bearer {pair['access_token']}"
                consumers.refresh_tokens[c] = pair["refresh_token"]
                consumers.issued_at[c] = time.monotonic()
            future.set_result(ok)
            return ok
        finally:
            if not future.done():
                future.set_result(False)
            del self.refreshing[c]

    async def _login(self, run: _Run, measured: bool, c: int) -> None:
        consumers = self.fixtures.consumers
        body = orjson.dumps({"email": consumers.emails[c], "password": self.fixtures.password})
        await self._call(run, measured, LOGIN, "POST", "/v1/auth/login", None, body, 200)

    async def _purchase(
        self, run: _Run, i: int, slot: float, c: int, draw: Sequence[float]
    ) -> None:
        measured = run.measured(slot)
        if measured:
            run.outcomes.sent += 1
            run.lateness.append(int((time.perf_counter() - slot) * 1_000_000))
        run.in_flight += 1
        try:
            outcome = await self._steps(run, measured, i, c, draw)
        finally:
            run.in_flight -= 1
        if measured:
            if outcome == "captured":
                run.outcomes.captured += 1
            elif outcome == "declined":
                run.outcomes.declined += 1
            else:
                run.outcomes.failed += 1

    async def _steps(self, run: _Run, measured: bool, i: int, c: int, draw: Sequence[float]) -> str:
        fixtures, mix = self.fixtures, self.mix
        consumers = fixtures.consumers
        m = i % len(fixtures.merchant_ids)
        merchant = fixtures.merchant_authorization[m]
        refresh = None
        if time.monotonic() - consumers.issued_at[c] > self.refresh_after_s:
            refresh = asyncio.ensure_future(self._refresh(run, measured, c))
        if draw[0] < mix.over_limit:
            plan, amount = "pay_in_4", OVER_LIMIT_AMOUNT
        elif draw[1] < mix.monthly_6:
            plan, amount = "monthly_6", 10_000 + int(draw[2] * 50_000)
        elif draw[1] < mix.monthly_6 + mix.monthly_12:
            plan, amount = "monthly_12", 10_000 + int(draw[2] * 50_000)
        else:
            plan, amount = "pay_in_4", 2_000 + int(draw[2] * 38_000)

        create = orjson.dumps(
            {
                "amount": amount,
                "currency": "USD",
                "merchant_reference": f"bench-{i}",
                "consumer_email": consumers.emails[c],
            }
        )
        ok, raw, t1 = await self._call(
            run, measured, CREATE, "POST", "/v1/checkouts", merchant, create, 201
        )
        if not ok:
            return "failed"
        checkout_id = orjson.loads(memoryview(raw))["id"]
        if refresh is not None and not await refresh:
            return "failed"
        confirm = orjson.dumps({"plan": plan, "payment_method_id": consumers.payment_methods[c]})
        path = f"/v1/checkouts/{checkout_id}"
        ok, raw, t2 = await self._call(
            run,
            measured,
            CONFIRM,
            "POST",
            path + "/confirm",
            consumers.authorization[c],
            confirm,
            200,
        )
        if not ok:
            return "failed"
        confirmed = orjson.loads(memoryview(raw))
        if confirmed["status"] != "authorized":
            return "declined"
        ok, raw, t3 = await self._call(
            run, measured, CAPTURE, "POST", path + "/capture", merchant, None, 200
        )
        if not ok:
            return "failed"
        done = time.perf_counter()
        run.completed_total += 1
        if run.window[0] <= done < run.window[1]:
            run.completed_in_window += 1
        if measured:
            run.purchases.append(t1 + t2 + t3)

        # Around the purchase, not part of its latency.
        if draw[3] < mix.refund:
            body = orjson.dumps({"amount": amount // 2, "reason": "returned_item"})
            await self._call(run, measured, REFUND, "POST", path + "/refunds", merchant, body, 201)
        authorization = consumers.authorization[c]
        if draw[4] < mix.plan_read:
            plan_path = f"/v1/plans/{confirmed['plan_id']}"
            await self._call(run, measured, PLAN, "GET", plan_path, authorization, None, 200)
        if draw[5] < mix.my_plans:
            await self._call(
                run, measured, MY_PLANS, "GET", "/v1/me/plans", authorization, None, 200
            )
        if draw[6] < mix.login:
            await self._login(run, measured, c)
        return "captured"

    # -- the open loop ---------------------------------------------------------------------

    def _spawn(self, run: _Run, slot: float) -> None:
        consumers = self.fixtures.consumers
        c = self.order[self.next_consumer % len(consumers)]
        self.next_consumer += 1
        i = self.next_purchase
        self.next_purchase += 1
        draw = [self.rng.random() for _ in range(7)]
        task = asyncio.create_task(self._purchase(run, i, slot, c, draw))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        run.sent_total += 1

    async def run(
        self,
        rate: float,
        warmup_s: float,
        duration_s: float,
        groups: Sequence[procstat.Group] = (),
        progress: bool = True,
    ) -> RunResult:
        """Offer `rate` purchases a second for `warmup_s + duration_s`; measure the last
        `duration_s`."""
        start = time.perf_counter() + 0.2
        window = (start + warmup_s, start + warmup_s + duration_s)
        wall = datetime.now(UTC) + timedelta(seconds=start + warmup_s - time.perf_counter())
        run = _Run(window)
        total = int(rate * (warmup_s + duration_s))
        snapshots: list[procstat.Snapshot] = []  # at the window's ends
        ticks: list[procstat.Snapshot] = []  # in between, every few seconds
        rss_peak: dict[str, int] = {}
        marks_taken = asyncio.Event()
        watcher = asyncio.create_task(
            self._watch(run, groups, snapshots, ticks, rss_peak, progress, marks_taken)
        )
        try:
            launched = 0
            while launched < total:
                now = time.perf_counter()
                due = start + launched / rate
                if due > now:
                    await asyncio.sleep(due - now)
                    now = time.perf_counter()
                while launched < total and start + launched / rate <= now:
                    self._spawn(run, start + launched / rate)
                    launched += 1
            # The schedule is over; wait (bounded) for the purchases still running.
            deadline = max(window[1], time.perf_counter()) + DRAIN_TIMEOUT_S
            while self.tasks and time.perf_counter() < deadline:
                await asyncio.wait(set(self.tasks), timeout=deadline - time.perf_counter())
            unfinished = list(self.tasks)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
                run.outcomes.unfinished = len(unfinished)
                run.errors["unfinished after the drain timeout"] += len(unfinished)
            # The window's end may come after the schedule's when the warm-up is short; its
            # snapshot is the watcher's (wait for it, bounded).
            wait = max(window[1] - time.perf_counter(), 0.0) + 30.0
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(marks_taken.wait(), timeout=wait)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        result = RunResult(
            rate=rate,
            warmup_s=warmup_s,
            duration_s=duration_s,
            latencies=run.latencies,
            purchases=run.purchases,
            lateness=run.lateness,
            outcomes=run.outcomes,
            completed_in_window=run.completed_in_window,
            errors=run.errors,
            warmup_errors=run.warmup_errors,
            rss_peak=rss_peak,
            window_wall=(wall, wall + timedelta(seconds=duration_s)),
        )
        if len(snapshots) == 2:
            first, last = snapshots
            result.usage = procstat.usage(groups, [first, *ticks, last])
            total_cpu = last.machine_total_s - first.machine_total_s
            if total_cpu > 0:
                result.machine_busy = (last.machine_busy_s - first.machine_busy_s) / total_cpu
        return result

    async def _watch(
        self,
        run: _Run,
        groups: Sequence[procstat.Group],
        snapshots: list[procstat.Snapshot],
        ticks: list[procstat.Snapshot],
        rss_peak: dict[str, int],
        progress: bool,
        marks_taken: asyncio.Event,
    ) -> None:
        """Snapshot the processes at the window's ends; print a progress line every few
        seconds (to stderr) and keep each group's peak memory."""
        start = run.window[0]
        began = time.perf_counter()
        marks = list(run.window)
        last_completed, last_at = 0, began
        tick = began + PROGRESS_EVERY_S  # a fixed schedule: an early wake-up cannot repeat it
        while True:
            if marks and marks[0] <= tick:
                await asyncio.sleep(max(0.0, marks.pop(0) - time.perf_counter()))
                # /proc is read in a thread: reading smaps of tens of PostgreSQL processes
                # takes milliseconds the purchases' schedule cannot spare.
                at = time.perf_counter()
                snapshots.append(await asyncio.to_thread(procstat.snapshot, groups, at))
                if not marks:
                    marks_taken.set()
                continue
            await asyncio.sleep(max(0.0, tick - time.perf_counter()))
            tick += PROGRESS_EVERY_S
            now = time.perf_counter()
            if groups and run.window[0] <= now <= run.window[1]:
                taken = await asyncio.to_thread(procstat.snapshot, groups, now)
                ticks.append(taken)
                for name, samples in taken.groups.items():
                    rss = sum(s.rss_bytes for s in samples)
                    rss_peak[name] = max(rss_peak.get(name, 0), rss)
            recent, run.recent = run.recent, []
            if progress:
                p99 = sorted(recent)[int(len(recent) * 0.99)] / 1000 if recent else 0.0
                rate = (run.completed_total - last_completed) / (now - last_at)
                last_completed, last_at = run.completed_total, now
                phase = "warm-up" if now < start else "measured"
                print(
                    f"  [{now - began:6.1f} s {phase}] sent {run.sent_total:,}  completed "
                    f"{run.completed_total:,}  in flight {run.in_flight:,}  "
                    f"{rate:7.1f} purchases/s  p99 {p99:8.1f} ms (requests, last "
                    f"{PROGRESS_EVERY_S:g} s)  errors {run.error_total():,}",
                    file=sys.stderr,
                    flush=True,
                )
