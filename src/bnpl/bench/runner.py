"""One `bnpl bench` invocation: the target (started here or `--url`), the seed, one run at a
fixed rate or the `--find-max` search (plus the raw-SQL ceiling), and the report."""

from __future__ import annotations

import asyncio
import contextlib
import math
import os
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from bnpl.bench import ceiling, procstat
from bnpl.bench.http import Http
from bnpl.bench.load import Generator, Mix, RunResult
from bnpl.bench.platform import Server, Target, database_server, started_platform
from bnpl.bench.report import credit_decisions, credit_text, figures, text
from bnpl.bench.seed import seed
from bnpl.kit.gc_tuning import tune_for_service

# --find-max: a step passes when, held for its whole measured window, every request's p99
# is at most this, fewer than this share of requests failed, and the purchases completed
# kept up with those offered.
MAX_P99_MS = 250.0
MAX_ERROR_RATE = 0.001
MIN_ACHIEVED = 0.97


@dataclass
class Options:
    rate: float
    duration: float
    warmup: float
    url: str | None
    json: bool
    find_max: bool
    step_duration: float
    step_warmup: float
    start_rate: float
    max_rate: float
    step_growth: float
    precision: float
    ceiling: bool
    merchants: int
    consumers: int
    seed: int
    api_workers: int | None
    connections: int
    mix: Mix
    token_refresh_after: float


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def consumers_needed(options: Options) -> int:
    """Enough consumers that none buys twice in a run (`--consumers 0`), at least 1,000."""
    if options.consumers:
        return options.consumers
    if options.find_max:
        return 200_000
    return max(1_000, min(200_000, math.ceil(options.rate * (options.warmup + options.duration))))


def watched(target: Target) -> list[procstat.Group]:
    """The processes to report: the platform's tree, the simulators, PostgreSQL and this
    generator; only the generator when the platform's pids are unknown (`--url`)."""
    groups = []
    if target.platform_pid is not None:
        groups.append(
            procstat.Group("platform: bnpl up (API + workers)", [target.platform_pid], True, True)
        )
    if target.sandbox_pid is not None:
        groups.append(procstat.Group("provider simulators: bnpl sandbox", [target.sandbox_pid]))
    if target.server is not None and target.server.postmaster_pid is not None:
        database = target.database_url and urlsplit(target.database_url).path.lstrip("/")
        groups.append(
            procstat.Group(
                "PostgreSQL: the run's backends + server's own",
                [target.server.postmaster_pid],
                database=database or None,
            )
        )
    groups.append(procstat.Group("generator: bnpl bench", [os.getpid()], with_children=False))
    return groups


@contextlib.asynccontextmanager
async def target_for(options: Options, server: Server | None) -> AsyncIterator[Target]:
    admin_token = os.environ.get("BNPL_ADMIN_TOKEN", "sandbox-admin-token")
    if options.url is not None:
        yield Target(options.url, admin_token, server=None)
        return
    assert server is not None
    async with started_platform(server, admin_token, options.api_workers, log) as target:
        yield target


def passes(f: dict[str, Any]) -> tuple[bool, str]:
    reasons = []
    if f["p99_ms"] is None or f["p99_ms"] > MAX_P99_MS:
        reasons.append(f"p99 {f['p99_ms']} ms > {MAX_P99_MS:g}")
    if f["error_rate"] >= MAX_ERROR_RATE:
        reasons.append(f"errors {f['error_rate']:.3%} >= {MAX_ERROR_RATE:.1%}")
    if f["purchases_per_s"] < MIN_ACHIEVED * f["rate"] * _captured_share(f):
        reasons.append(f"completed {f['purchases_per_s']:.1f}/s of {f['rate']:g}/s offered")
    return not reasons, "; ".join(reasons) or "held"


def _captured_share(f: dict[str, Any]) -> float:
    # Declined purchases are part of the mix: only the captured share can complete.
    p = f["purchases"]
    decided = p["captured"] + p["declined"]
    return p["captured"] / decided if decided else 1.0


async def find_max(
    generator: Generator,
    options: Options,
    groups: list[procstat.Group],
    database_url: str | None,
) -> tuple[float | None, list[dict[str, Any]], dict[str, Any] | None]:
    """Ramp up by `step_growth` until a step fails, then bisect down to `precision`.
    Returns (highest rate held, each step's figures, the best step's figures)."""
    steps: list[dict[str, Any]] = []
    best: float | None = None
    best_figures: dict[str, Any] | None = None
    failed: float | None = None
    rate = options.start_rate
    while True:
        log(f"\nstep {len(steps) + 1}: {rate:.4g} purchases/s for {options.step_duration:g} s")
        result = await generator.run(rate, options.step_warmup, options.step_duration, groups)
        f = figures(result)
        if database_url is not None:
            f["credit_decision"] = await credit_decisions(database_url, result)
        ok, why = passes(f)
        steps.append({"rate": rate, "held": ok, "why": why, **_brief(f)})
        log(
            f"step {len(steps)}: {rate:.4g}/s -> {f['purchases_per_s']:.1f}/s completed, "
            f"p99 {f['p99_ms']} ms, errors {f['error_rate']:.3%}: {'HELD' if ok else why}"
        )
        if ok:
            best, best_figures = rate, f
        else:
            failed = rate if failed is None else min(failed, rate)
        if failed is None:
            if rate >= options.max_rate:
                break
            rate = min(options.max_rate, rate * options.step_growth)
        else:
            low = best if best is not None else 0.0
            if failed - low <= options.precision * failed or failed <= 1:
                break
            rate = (low + failed) / 2 if best is not None else failed / options.step_growth
            if best is None and rate < 1:
                break
        await _pause()
    return best, steps, best_figures


async def _pause(seconds: float = 5.0) -> None:
    """Between steps: let the platform finish the previous step's background work."""
    await asyncio.sleep(seconds)


def _brief(f: dict[str, Any]) -> dict[str, Any]:
    brief = {
        k: f[k]
        for k in ("purchases_per_s", "p50_ms", "p99_ms", "errors", "error_rate", "purchases")
    }
    brief["purchase_p99_ms"] = f["purchase"]["p99_ms"]
    brief["credit_decision_p99_ms"] = (f.get("credit_decision") or {}).get("p99_ms")
    return brief


async def main(options: Options) -> int:
    """Run the benchmark; print the report (stderr) and the JSON object (stdout, --json).
    0 when every measured request succeeded (or, with --find-max, a rate was held)."""
    server = None
    if options.url is None or (options.find_max and options.ceiling):
        server = await database_server()
    raw_ceiling: ceiling.Ceiling | None = None
    ceiling_error: str | None = None
    if options.find_max and options.ceiling and server is not None:
        # Before the platform starts, so nothing else runs on the server meanwhile.
        try:
            raw_ceiling = await ceiling.measure(server, log)
            log(f"ceiling: {raw_ceiling.tps:,.0f} checkouts/s ({raw_ceiling.command})")
        except RuntimeError as exc:
            ceiling_error = str(exc)
            log(f"ceiling not measured: {exc}")
    async with target_for(options, server) as target:
        http = Http(target.url, options.connections)
        try:
            consumers = consumers_needed(options)
            fixtures = await seed(
                http, target.admin_token, options.merchants, consumers, options.mix.risky, log
            )
            log(
                f"seeding: {options.merchants:,} merchants and {consumers:,} consumers in "
                f"{fixtures.seconds:.1f} s"
            )
            tune_for_service()  # the seeded credentials live as long as the run
            generator = Generator(
                http,
                fixtures,
                seed=options.seed,
                mix=options.mix,
                refresh_after_s=options.token_refresh_after,
                log=log,
            )
            groups = watched(target)
            started = time.perf_counter()
            if options.find_max:
                best, steps, best_figures = await find_max(
                    generator, options, groups, target.database_url
                )
                out: dict[str, Any] = dict(best_figures or {})
                out["find_max"] = {
                    "max_purchases_per_s": best,
                    "criteria": {
                        "p99_ms_at_most": MAX_P99_MS,
                        "error_rate_below": MAX_ERROR_RATE,
                        "step_duration_s": options.step_duration,
                    },
                    "steps": steps,
                }
                out["ceiling"] = _ceiling(raw_ceiling, ceiling_error, best)
                if best_figures is not None:
                    log("\nthe highest rate held:\n" + text(best_figures))
                    log(credit_text(best_figures.get("credit_decision")))
                log(_find_max_text(best, options, raw_ceiling))
                status = 0 if best is not None else 1
            else:
                log(
                    f"driving {options.rate:g} purchases/s for {options.warmup:g} s warm-up + "
                    f"{options.duration:g} s measured ..."
                )
                result: RunResult = await generator.run(
                    options.rate, options.warmup, options.duration, groups
                )
                out = figures(result)
                if target.database_url is not None:
                    out["credit_decision"] = await credit_decisions(target.database_url, result)
                log("\n" + text(out))
                if out.get("credit_decision"):
                    log(credit_text(out["credit_decision"]))
                status = 0 if out["errors"] == 0 else 1
            out["target"] = {"url": target.url, "started_here": options.url is None}
            out["seeding"] = {
                "merchants": options.merchants,
                "consumers": consumers,
                "seconds": round(fixtures.seconds, 2),
            }
            out["elapsed_s"] = round(time.perf_counter() - started, 1)
        finally:
            await http.aclose()
    if options.json:
        sys.stdout.write(orjson.dumps(out).decode() + "\n")
        sys.stdout.flush()
    return status


def _ceiling(found: ceiling.Ceiling | None, error: str | None, best: float | None) -> Any:
    if found is None:
        return {"tps": None, "error": error}
    return {
        "tps": round(found.tps, 1),
        "command": found.command,
        "ratio": round(best / found.tps, 4) if best is not None else None,
    }


def _find_max_text(best: float | None, options: Options, found: ceiling.Ceiling | None) -> str:
    held = (
        f"{best:.4g} purchases/s" if best is not None else f"none (not even {options.start_rate:g})"
    )
    line = (
        f"\nfind-max: the highest rate held for {options.step_duration:g} s with p99 <= "
        f"{MAX_P99_MS:g} ms per request and < {MAX_ERROR_RATE:.1%} errors: {held}"
    )
    if found is not None:
        ratio = f"{best / found.tps:.1%}" if best is not None else "-"
        line += f"\nraw-SQL ceiling {found.tps:,.0f} checkouts/s; ratio {ratio}"
    return line
