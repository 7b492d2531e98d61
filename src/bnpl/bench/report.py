"""What a run prints: rates, latency percentiles (HDR histograms), errors, CPU and memory.

Latencies go into HdrHistograms (`hdrhistogram` on PyPI: 3 significant digits, 1 µs to one
hour) after the run, from the raw values the generator kept, so the recording costs nothing
while the load runs."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import asyncpg
from hdrh.histogram import HdrHistogram

from bnpl.bench.load import CAPTURE, CONFIRM, CREATE, ENDPOINTS, RunResult

_MAX_US = 3_600_000_000
PERCENTILES = (50.0, 95.0, 99.0)


def histogram(values: Iterable[int]) -> HdrHistogram:
    h = HdrHistogram(1, _MAX_US, 3)
    for value in values:
        h.record_value(min(max(value, 1), _MAX_US))
    return h


def summary(h: HdrHistogram) -> dict[str, Any]:
    """count, p50/p95/p99/max in ms (None when empty)."""
    count = h.get_total_count()
    if count == 0:
        return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    found: dict[str, Any] = {"count": count}
    for p in PERCENTILES:
        found[f"p{p:g}_ms"] = round(h.get_value_at_percentile(p) / 1000, 2)
    found["max_ms"] = round(h.get_max_value() / 1000, 2)
    return found


def figures(result: RunResult, purchases_cpu_basis: int | None = None) -> dict[str, Any]:
    """The run's figures as the JSON object carries them."""
    every = HdrHistogram(1, _MAX_US, 3)
    endpoints: dict[str, Any] = {}
    for name in ENDPOINTS:
        values = result.latencies[name]
        if not values:
            continue
        h = histogram(values)
        every.add(h)
        endpoints[name] = summary(h)
    requests = summary(every)
    purchase = summary(histogram(result.purchases))
    lateness = summary(histogram(result.lateness))
    completed = result.completed_in_window
    basis = purchases_cpu_basis if purchases_cpu_basis is not None else completed
    processes = []
    for use in result.usage:
        processes.append(
            {
                "name": use.name,
                "pids": use.pids,
                "cpu_pct_of_core": round(use.cpu_s / result.duration_s * 100, 1),
                "cpu_ms_per_purchase": round(use.cpu_s * 1000 / basis, 3) if basis else None,
                "rss_mb": round(use.rss_bytes / 2**20, 1),
                "pss_mb": round(use.pss_bytes / 2**20, 1) if use.pss_bytes is not None else None,
                "rss_peak_mb": round(
                    max(use.rss_bytes, result.rss_peak.get(use.name, 0)) / 2**20, 1
                ),
            }
        )
    requests_count = result.requests
    return {
        "rate": result.rate,
        "duration_s": result.duration_s,
        "warmup_s": result.warmup_s,
        "purchases_per_s": round(result.purchases_per_s, 2),
        "purchases": {
            "due": result.outcomes.sent,
            "captured": result.outcomes.captured,
            "declined": result.outcomes.declined,
            "failed": result.outcomes.failed,
            "unfinished": result.outcomes.unfinished,
            "completed_in_window": completed,
        },
        "requests": requests_count,
        "p50_ms": requests["p50_ms"],
        "p95_ms": requests["p95_ms"],
        "p99_ms": requests["p99_ms"],
        "max_ms": requests["max_ms"],
        "purchase": purchase,
        "endpoints": endpoints,
        "errors": result.error_count,
        "error_rate": round(result.error_count / requests_count, 6) if requests_count else 0.0,
        "errors_by_code": dict(result.errors.most_common()),
        "warmup_errors": result.warmup_errors,
        "send_lateness": lateness,
        "processes": processes,
        "machine": {
            "cpus": os.cpu_count(),
            "busy_pct": (
                round(result.machine_busy * 100, 1) if result.machine_busy is not None else None
            ),
        },
    }


def _ms(value: float | None) -> str:
    return "       -" if value is None else f"{value:8.1f}"


def _row(name: str, s: dict[str, Any]) -> str:
    return (
        f"  {name:<34} {s['count']:>8,}  {_ms(s['p50_ms'])} {_ms(s['p95_ms'])} "
        f"{_ms(s['p99_ms'])} {_ms(s['max_ms'])}"
    )


def text(f: dict[str, Any]) -> str:
    """The human report of one run's figures."""
    p = f["purchases"]
    lines = [
        f"offered {f['rate']:g} purchases/s open-loop; measured {f['duration_s']:g} s after "
        f"{f['warmup_s']:g} s of warm-up",
        f"achieved: {f['purchases_per_s']:.1f} purchases/s completed in the window "
        f"({p['due']:,} due: {p['captured']:,} captured, {p['declined']:,} declined, "
        f"{p['failed']:,} failed, {p['unfinished']:,} unfinished)",
        "",
        f"  {'latency (ms)':<34} {'count':>8}  {'p50':>8} {'p95':>8} {'p99':>8} {'max':>8}",
        _row("purchase (create+confirm+capture)", f["purchase"]),
    ]
    order = [CREATE, CONFIRM, CAPTURE] + [
        n for n in ENDPOINTS if n not in (CREATE, CONFIRM, CAPTURE)
    ]
    for name in order:
        if name in f["endpoints"]:
            lines.append(_row(name, f["endpoints"][name]))
    every = {k: f[k] for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")}
    lines.append(_row("every request", {"count": f["requests"], **every}))
    lateness = f["send_lateness"]
    lines.append(
        f"  generator: purchases started late by p99 {_ms(lateness['p99_ms']).strip()} ms, "
        f"max {_ms(lateness['max_ms']).strip()} ms (more than a few ms: the generator fell "
        "behind its schedule)"
    )
    lines.append("")
    if f["errors"] or f["warmup_errors"]:
        lines.append(
            f"errors: {f['errors']:,} of {f['requests']:,} requests ({f['error_rate']:.3%}); "
            f"{f['warmup_errors']:,} more during the warm-up"
        )
        for key, count in f["errors_by_code"].items():
            lines.append(f"  {count:>8,}  {key}")
    else:
        lines.append("errors: none")
    if f["processes"]:
        lines.append("")
        lines.append(
            f"  {'process':<44} {'CPU % of a core':>15} {'ms/purchase':>12} {'RSS MB':>8} "
            f"{'peak RSS':>8} {'PSS MB':>8}"
        )
        for proc in f["processes"]:
            per, peak, pss = proc["cpu_ms_per_purchase"], proc["rss_peak_mb"], proc["pss_mb"]
            lines.append(
                f"  {proc['name']:<44} {proc['cpu_pct_of_core']:>15.1f} "
                f"{'-' if per is None else f'{per:.2f}':>12} {proc['rss_mb']:>8.1f} "
                f"{'-' if peak is None else f'{peak:.1f}':>8} "
                f"{'-' if pss is None else f'{pss:.1f}':>8}"
            )
    if any(p["name"].startswith("PostgreSQL") for p in f["processes"]):
        lines.append(
            "  (RSS of a group adds up its processes, shared memory once in each: PSS shares it)"
        )
    machine = f["machine"]
    if machine["busy_pct"] is not None:
        lines.append(
            f"  machine: {machine['busy_pct']:.0f}% busy of {machine['cpus']} CPUs "
            "(everything running on it, not only the above)"
        )
    return "\n".join(lines)


async def credit_decisions(database_url: str, result: RunResult) -> dict[str, Any] | None:
    """The credit decisions made in the measured window, from the platform's own record
    (`credit.decisions.latency_ms`: lock, features, rules, bureau, model): count, p50/p95/
    p99/max, and how the bureau was consulted. Only when the database is known (a platform
    started here; the platform clock of a fresh database is wall time)."""
    if result.window_wall is None:
        return None
    conn = await asyncpg.connect(database_url)
    try:
        row = await conn.fetchrow(
            """
            SELECT count(*) AS n,
                   percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50,
                   percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95,
                   percentile_disc(0.99) WITHIN GROUP (ORDER BY latency_ms) AS p99,
                   max(latency_ms) AS max
            FROM credit.decisions WHERE created_at >= $1 AND created_at < $2
            """,
            *result.window_wall,
        )
        bureau = await conn.fetch(
            "SELECT bureau, outcome, count(*) AS n FROM credit.decisions "
            "WHERE created_at >= $1 AND created_at < $2 GROUP BY 1, 2 ORDER BY 3 DESC",
            *result.window_wall,
        )
    finally:
        await conn.close()

    def ms(value: Any) -> float | None:
        return None if value is None else round(float(value), 2)

    return {
        "count": row["n"],
        "p50_ms": ms(row["p50"]),
        "p95_ms": ms(row["p95"]),
        "p99_ms": ms(row["p99"]),
        "max_ms": ms(row["max"]),
        "by_bureau_and_outcome": {f"{r['bureau']}/{r['outcome']}": r["n"] for r in bureau},
    }


def credit_text(found: dict[str, Any] | None) -> str:
    if not found or not found["count"]:
        return ""
    return (
        f"credit decisions in the window (stored latency_ms): {found['count']:,}, p50 "
        f"{found['p50_ms']} ms, p95 {found['p95_ms']} ms, p99 {found['p99_ms']} ms, max "
        f"{found['max_ms']} ms; {found['by_bureau_and_outcome']}"
    )
