"""`bnpl simulate`: weeks of a lender's traffic on the sandbox clock (issue 13, item 2).

Each simulated day sends the day's purchases, refunds, early payments and card changes
(`simulate_traffic`), then moves the sandbox clock one day (`POST /v1/sandbox/clock`), which
runs the collections, retries, late fees, expiries, settlements, payouts and notifications
that fell due, and reads what the platform did from its public events. One line per day;
at the end the totals and the checks (`simulate_checks`): the ledger, the audit chain, every
plan's invariants, settlements reconciled to the cent, one event per change, nothing charged
twice, no unexpected answer. The exit code is 1 when a check fails.

Only the public HTTP API is spoken, so the target is either a platform started here (a fresh
database, `bnpl sandbox` and `bnpl up` as processes of their own: `platform.started_platform`,
shared with `bnpl bench`) or a running one (`--url`, 127.0.0.0/8 only, the operator token from
`BNPL_ADMIN_TOKEN`). Its sandbox clock is moved forward `--days` days: that is the point.

Human-readable output goes to stdout, or to stderr with `--json`, which prints one JSON
object (per day, totals, checks) on stdout instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final, TextIO

import orjson
import typer
import uvloop

from bnpl.bench.cli import loopback_url
from bnpl.bench.http import Http, JsonApi
from bnpl.bench.platform import BENCH_SETTINGS, Target, database_server, started_platform
from bnpl.bench.simulate_checks import Check, money, verify
from bnpl.bench.simulate_traffic import DayFigures, Mix, Simulator, persona_counts

MAX_DAYS: Final = 400
MAX_PURCHASES_PER_DAY: Final = 10_000
CONSUMERS_PER_DAILY_PURCHASE: Final = 10  # the default pool: each buys every ten days or so

# The platform started here: one client speaks for every merchant and consumer from one
# address, so the per-principal rate limits are raised; the credit rules (velocity, limits)
# stay as they are.
SIMULATE_SETTINGS: Final = {
    k: v for k, v in BENCH_SETTINGS.items() if k != "BNPL_VELOCITY_MAX_APPROVALS_24H"
}

COLUMNS: Final = (
    ("day", 4),
    ("date", 11),
    ("purchases", 10),
    ("declined", 9),
    ("collected", 10),
    ("failed", 7),
    ("retries", 8),
    ("late fees", 10),
    ("refunds", 8),
    ("settlements paid", 18),
    ("wall", 9),
)


@dataclass(frozen=True, slots=True)
class Options:
    days: int
    purchases_per_day: int
    url: str | None
    json: bool
    seed: int
    merchants: int
    consumers: int
    concurrency: int
    api_workers: int | None = None


class Printer:
    """The human-readable report: stdout, or stderr when stdout carries the JSON."""

    def __init__(self, json: bool) -> None:
        self.stream: TextIO = sys.stderr if json else sys.stdout

    def __call__(self, line: str = "") -> None:
        print(line, file=self.stream, flush=True)


def header() -> str:
    return "".join(
        name.ljust(width) if name in ("day", "date") else name.rjust(width)
        for name, width in COLUMNS
    )


def day_line(f: DayFigures) -> str:
    values = (
        f.day,
        f.date,
        f.purchases,
        f.declined,
        f.collected,
        f.failed,
        f.retries,
        f.late_fees,
        f.refunds,
        f.settlements_paid,
        f"{f.wall_s:.2f} s",
    )
    return "".join(
        str(v).ljust(w) if name in ("day", "date") else str(v).rjust(w)
        for v, (name, w) in zip(values, COLUMNS, strict=True)
    )


def totals_text(t: DayFigures, days: int, seen: dict[str, Any]) -> list[str]:
    plans = ", ".join(f"{k} {v:,}" for k, v in seen["plans_by_status"].items()) or "-"
    settled = ", ".join(f"{k} {v:,}" for k, v in seen["settlements_by_status"].items()) or "-"
    sample = seen["notifications_sample"]
    templates = ", ".join(f"{k} {v:,}" for k, v in sample["by_template"].items()) or "-"
    statuses = ", ".join(f"{k} {v:,}" for k, v in sample["by_status"].items()) or "-"
    failures = "; ".join(f"{k} ({v:,})" for k, v in sample["failures"].items())
    return [
        f"totals over {days} days ({t.wall_s:.1f} s simulating: {t.traffic_s:.1f} s traffic, "
        f"{t.clock_s:.1f} s of clock moves):",
        f"  purchases      {t.purchases:,} captured ({money(t.purchase_amount)} USD), "
        f"{t.declined:,} declined, {t.voided:,} voided, {t.uncaptured:,} left uncaptured; "
        f"{t.expired:,} checkouts expired",
        f"  collections    {t.collected:,} succeeded ({money(t.collected_amount)}), "
        f"{t.failed:,} declined ({t.failed_soft:,} soft, {t.failed_hard:,} hard), "
        f"{t.retries:,} retries, {t.recovered:,} paid after a failure; "
        f"{t.installments_paid:,} installments paid in all",
        f"  late fees      {t.late_fees:,} ({money(t.late_fee_amount)}); {t.delinquent:,} plans "
        f"went delinquent, {t.reactivated:,} back to active, {t.charged_off:,} charged off",
        f"  refunds        {t.refunds:,} ({money(t.refund_amount)}), "
        f"{money(t.refunded_to_consumers)} of it paid back to consumers' cards",
        f"  consumers      {t.early_payments:,} early payments, {t.payoffs:,} payoffs, "
        f"{t.card_changes:,} card changes; {t.paid_off:,} plans paid off",
        f"  settlements    {t.settlements:,} created, {t.settlements_paid:,} paid out "
        f"({money(t.settlement_paid_amount)}); now {settled}",
        f"  plans          {plans}",
        f"  notifications  {sample['consumers']} consumers' sample: {templates}; {statuses}",
        *([f"                 failed: {failures}"] if failures else []),
    ]


def checks_text(checks: list[Check]) -> list[str]:
    width = max(len(c.name) for c in checks) + 2
    lines = ["checks:"]
    lines += [f"  {'ok  ' if c.ok else 'FAIL'}  {c.name.ljust(width)}{c.detail}" for c in checks]
    failed = sum(not c.ok for c in checks)
    lines.append(
        f"result: all {len(checks)} checks passed"
        if not failed
        else f"result: {failed} of {len(checks)} checks FAILED"
    )
    return lines


@contextlib.asynccontextmanager
async def target_for(options: Options, admin_token: str, say: Printer) -> AsyncIterator[Target]:
    if options.url is not None:
        yield Target(options.url, admin_token)
        return
    server = await database_server()
    async with started_platform(
        server, admin_token, options.api_workers, say, settings=SIMULATE_SETTINGS, name="simulate"
    ) as target:
        yield target


async def main(options: Options) -> int:
    """Run the simulation; 0 when every check holds."""
    say = Printer(options.json)
    admin_token = os.environ.get("BNPL_ADMIN_TOKEN", "sandbox-admin-token")
    consumers = options.consumers or max(
        100, CONSUMERS_PER_DAILY_PURCHASE * options.purchases_per_day
    )
    started = time.perf_counter()
    per_day: list[DayFigures] = []
    totals = DayFigures()
    async with target_for(options, admin_token, say) as target:
        http = Http(target.url, options.concurrency + 4)
        api = JsonApi(http, admin_token)
        sim = Simulator(
            api,
            seed_value=options.seed,
            mix=Mix(),
            purchases_per_day=options.purchases_per_day,
            concurrency=options.concurrency,
        )
        try:
            seconds = await sim.seed_world(options.merchants, consumers)
            split = ", ".join(f"{n:,} {p.value}" for p, _, n in persona_counts(consumers) if n)
            say(
                f"seeded {len(sim.merchant_ids):,} merchants and {len(sim.shoppers):,} consumers "
                f"({split}) in {seconds:.1f} s"
            )
            if await sim.clock("PT0S") is None or not sim.shoppers or not sim.merchant_ids:
                say("the platform refused the set-up (sandbox seeding and clock):")
                for what, count in api.errors.most_common():
                    say(f"  {count} x {what}")
                return 1
            first_date = sim.today
            say(
                f"simulating {options.days} days x {options.purchases_per_day:,} purchases "
                f"from {first_date} on {target.url} (seed {options.seed})"
            )
            say(header())
            for day in range(1, options.days + 1):
                assert sim.today is not None
                f = DayFigures(day=day, date=sim.today.isoformat())
                t0 = time.perf_counter()
                await sim.run_day(day, f)
                t1 = time.perf_counter()
                moved = await sim.clock("P1D")
                t2 = time.perf_counter()
                await sim.read_events(f, day)
                f.traffic_s, f.clock_s, f.wall_s = t1 - t0, t2 - t1, time.perf_counter() - t0
                per_day.append(f)
                totals.add(f)
                say(day_line(f))
                if moved is None:
                    say("the sandbox clock did not move: stopping here")
                    break
            say("verifying ...")
            checks, seen = await verify(sim, len(per_day))
        finally:
            await http.aclose()
    say()
    for line in totals_text(totals, len(per_day), seen):
        say(line)
    for line in checks_text(checks):
        say(line)
    ok = all(c.ok for c in checks) and len(per_day) == options.days
    if options.json:
        out = {
            "ok": ok,
            "days": options.days,
            "days_simulated": len(per_day),
            "purchases_per_day": options.purchases_per_day,
            "seed": options.seed,
            "target": {"url": target.url, "started_here": options.url is None},
            "seeding": {
                "merchants": len(sim.merchant_ids),
                "consumers": len(sim.shoppers),
                "personas": {p.value: n for p, _, n in persona_counts(consumers)},
                "seconds": round(seconds, 2),
            },
            "first_date": first_date.isoformat() if first_date else None,
            "last_date": sim.today.isoformat() if sim.today else None,
            "per_day": [f.as_json() for f in per_day],
            "totals": {k: v for k, v in totals.as_json().items() if k not in ("day", "date")},
            "seen": seen,
            "checks": [c.as_json() for c in checks],
            "requests": api.sent,
            "elapsed_s": round(time.perf_counter() - started, 1),
        }
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        sys.stdout.flush()
    return 0 if ok else 1


def simulate(
    days: Annotated[
        int, typer.Option(min=1, max=MAX_DAYS, help="Simulated days (the sandbox clock moves).")
    ] = 30,
    purchases_per_day: Annotated[
        int,
        typer.Option(
            min=1, max=MAX_PURCHASES_PER_DAY, help="Purchases (checkouts) attempted each day."
        ),
    ] = 200,
    url: Annotated[
        str | None,
        typer.Option(
            help="A running platform (127.0.0.0/8 only; operator token from BNPL_ADMIN_TOKEN); "
            "its sandbox clock is moved forward. Unset: start one on a fresh database."
        ),
    ] = None,
    json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object on stdout (the report: stderr).")
    ] = False,
    seed: Annotated[int, typer.Option(help="Random seed of the mix (same seed, same mix).")] = 1,
    merchants: Annotated[int, typer.Option(min=1, max=200, help="Merchants to seed.")] = 10,
    consumers: Annotated[
        int,
        typer.Option(
            min=0,
            max=200_000,
            help=f"Consumers to seed (0: {CONSUMERS_PER_DAILY_PURCHASE} per daily purchase, "
            "at least 100).",
        ),
    ] = 0,
    concurrency: Annotated[
        int, typer.Option(min=1, max=256, help="Most requests in flight at a time.")
    ] = 16,
    api_workers: Annotated[
        int | None,
        typer.Option(
            min=1, max=64, help="Without --url: passed to `bnpl up --workers N` when given."
        ),
    ] = None,
) -> None:
    """Simulate weeks of traffic on the sandbox clock (purchases, collections, retries, late
    fees, refunds, settlements, notifications); print each day's work, then verify the
    ledger, the audit chain and every plan's invariants (exit code 1 if a check fails)."""
    if url is not None:
        url = loopback_url(url)
    options = Options(
        days=days,
        purchases_per_day=purchases_per_day,
        url=url,
        json=json,
        seed=seed,
        merchants=merchants,
        consumers=consumers,
        concurrency=concurrency,
        api_workers=api_workers,
    )
    raise typer.Exit(uvloop.run(main(options)))
