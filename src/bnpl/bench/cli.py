"""`bnpl bench`: the command line of the purchase load generator."""

from __future__ import annotations

import dataclasses
import ipaddress
from typing import Annotated
from urllib.parse import urlsplit

import typer
import uvloop

from bnpl.bench.load import REFRESH_AFTER_S, Mix
from bnpl.bench.runner import Options, main

# Bounds: a benchmark sends traffic only to this machine, for a bounded time.
MAX_RATE = 5_000.0
MAX_DURATION_S = 1_800.0
MAX_WARMUP_S = 300.0


def loopback_url(url: str) -> str:
    """`url` if it names a host in 127.0.0.0/8 (or `localhost`); else BadParameter."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise typer.BadParameter("give an http://127.x.y.z:PORT URL", param_hint="--url")
    host = parts.hostname
    if host != "localhost":
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            address = None
        if address is None or address.version != 4 or not address.is_loopback:
            raise typer.BadParameter(
                f"{host} is not on this machine: only 127.0.0.0/8 targets", param_hint="--url"
            )
    return url.rstrip("/")


def parse_mix(spec: str) -> Mix:
    """`name=share,...` over the defaults of `Mix` (shares in [0, 1])."""
    changes: dict[str, float] = {}
    names = {f.name for f in dataclasses.fields(Mix)}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, value = part.partition("=")
        try:
            share = float(value)
        except ValueError:
            share = -1.0
        if name.strip() not in names or not 0 <= share <= 1:
            raise typer.BadParameter(
                f"{part!r}: give name=share, share in [0, 1]", param_hint="--mix"
            )
        changes[name.strip()] = share
    chosen = dataclasses.replace(Mix(), **changes)
    if chosen.monthly_6 + chosen.monthly_12 > 1:
        raise typer.BadParameter("monthly_6 + monthly_12 must not exceed 1", param_hint="--mix")
    return chosen


def bench(
    rate: Annotated[float, typer.Option(help="Purchases offered per second (open loop).")] = 20.0,
    duration: Annotated[float, typer.Option(help="Measured seconds.")] = 30.0,
    warmup: Annotated[float, typer.Option(help="Seconds of load before measuring.")] = 5.0,
    url: Annotated[
        str | None,
        typer.Option(
            help="A running platform (127.0.0.0/8 only; operator token from BNPL_ADMIN_TOKEN). "
            "Unset: start one on a fresh database, the simulators in their own process."
        ),
    ] = None,
    json: Annotated[
        bool, typer.Option("--json", help="Print one JSON object last, on stdout.")
    ] = False,
    find_max: Annotated[
        bool,
        typer.Option(
            "--find-max",
            help="Find the highest rate held with p99 <= 250 ms per request and < 0.1% errors.",
        ),
    ] = False,
    step_duration: Annotated[
        float, typer.Option(help="--find-max: measured seconds per step.")
    ] = 60.0,
    step_warmup: Annotated[float, typer.Option(help="--find-max: warm-up per step.")] = 5.0,
    start_rate: Annotated[float, typer.Option(help="--find-max: the first step's rate.")] = 20.0,
    max_rate: Annotated[float, typer.Option(help="--find-max: the highest rate tried.")] = 2_000.0,
    step_growth: Annotated[
        float, typer.Option(help="--find-max: each step's rate over the last, while held.")
    ] = 1.5,
    precision: Annotated[
        float, typer.Option(help="--find-max: stop when held and failed rates are this close.")
    ] = 0.1,
    ceiling: Annotated[
        bool,
        typer.Option(
            help="--find-max: also measure the raw-SQL ceiling (pgbench, shared/bench) and the "
            "ratio to it."
        ),
    ] = True,
    merchants: Annotated[int, typer.Option(help="Merchants to seed.")] = 1_000,
    consumers: Annotated[
        int,
        typer.Option(
            help="Consumers to seed (0: one per purchase of the run, 200,000 for --find-max)."
        ),
    ] = 0,
    seed: Annotated[int, typer.Option(help="Random seed of the mix and the consumer order.")] = 1,
    api_workers: Annotated[
        int | None,
        typer.Option(help="Passed to `bnpl up --workers N` (API processes) when given."),
    ] = None,
    connections: Annotated[
        int, typer.Option(help="Most requests the generator keeps in flight.")
    ] = 512,
    mix: Annotated[
        str,
        typer.Option(
            help="Shares of the mix to change, e.g. `refund=0.1,login=0.01` (fields: "
            + ", ".join(f.name for f in dataclasses.fields(Mix))
            + ")."
        ),
    ] = "",
    token_refresh_after: Annotated[
        float, typer.Option(help="Refresh a consumer's access token once it is this old (s).")
    ] = REFRESH_AFTER_S,
) -> None:
    """Purchase load generator: open-loop create + confirm + capture with a realistic mix;
    prints rates, latency percentiles, errors, CPU and memory per process."""
    if url is not None:
        url = loopback_url(url)
    if not 0 < rate <= MAX_RATE or not 0 < start_rate <= max_rate <= MAX_RATE:
        raise typer.BadParameter(f"rates are in (0, {MAX_RATE:g}]", param_hint="--rate")
    if not 0 < duration <= MAX_DURATION_S or not 0 < step_duration <= MAX_DURATION_S:
        raise typer.BadParameter(f"durations are in (0, {MAX_DURATION_S:g}] s")
    if not 0 <= warmup <= MAX_WARMUP_S or not 0 <= step_warmup <= MAX_WARMUP_S:
        raise typer.BadParameter(f"warm-ups are in [0, {MAX_WARMUP_S:g}] s")
    if step_growth <= 1 or not 0 < precision < 1:
        raise typer.BadParameter("--step-growth must exceed 1 and --precision be in (0, 1)")
    if not 1 <= merchants <= 100_000 or not 0 <= consumers <= 2_000_000:
        raise typer.BadParameter("--merchants in [1, 100000], --consumers in [0, 2000000]")
    if not 1 <= connections <= 4096:
        raise typer.BadParameter("--connections in [1, 4096]")
    if api_workers is not None and not 1 <= api_workers <= 64:
        raise typer.BadParameter("--api-workers in [1, 64]")
    if not 0 <= token_refresh_after <= REFRESH_AFTER_S:
        raise typer.BadParameter(
            f"--token-refresh-after in [0, {REFRESH_AFTER_S}] (tokens live 15 minutes)"
        )
    options = Options(
        rate=rate,
        duration=duration,
        warmup=warmup,
        url=url,
        json=json,
        find_max=find_max,
        step_duration=step_duration,
        step_warmup=step_warmup,
        start_rate=start_rate,
        max_rate=max_rate,
        step_growth=step_growth,
        precision=precision,
        ceiling=ceiling,
        merchants=merchants,
        consumers=consumers,
        seed=seed,
        api_workers=api_workers,
        connections=connections,
        mix=parse_mix(mix),
        token_refresh_after=token_refresh_after,
    )
    raise typer.Exit(uvloop.run(main(options)))
