"""`bnpl`: run the platform in any of its roles."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Annotated

import typer
import uvicorn
import uvloop

from bnpl.bootstrap import Roles, database_url, start_platform
from bnpl.config import Settings
from bnpl.gateway.server import server_options
from bnpl.kit.gc_tuning import tune_for_service
from bnpl.logs import configure_logging

cli = typer.Typer(help="BNPL platform.", no_args_is_help=True, add_completion=False)

Host = Annotated[str, typer.Option(help="Interface to listen on.")]
Port = Annotated[int, typer.Option(help="Port to listen on.")]


def _settings() -> Settings:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_json)
    return settings


def _announce(settings: Settings, host: str, port: int) -> None:
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host  # noqa: S104 (a comparison)
    typer.echo(f"BNPL API on http://{shown}:{port}  (docs: http://{shown}:{port}/docs)", err=True)
    typer.echo(f"operator token: Authorization: Bearer {settings.admin_token}", err=True)


def _run_api(
    settings: Settings, host: str, port: int, roles: Roles, services: set[str] | None
) -> None:
    from bnpl.app import create_app

    app = create_app(settings, roles, services)
    _announce(settings, host, port)
    tune_for_service()
    # Read deadlines, a connection limit and no proxy headers (`gateway/server.py`).
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        **server_options(settings),
    )


Workers = Annotated[
    int | None,
    typer.Option("--workers", min=1, max=64, help="API processes (default: one per core)."),
]


@cli.command()
def up(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    workers: Workers = None,
    single_process: Annotated[
        bool, typer.Option(help="API, workers and simulators in one process (development).")
    ] = False,
) -> None:
    """Apply pending migrations, then run the whole platform: the API in `--workers`
    processes, the event and scheduled workers, the sandbox providers (`supervisor.py`)."""
    settings = _settings()
    if single_process:
        _run_api(settings, host, port, Roles(workers=True, migrate=True), None)
        return
    from bnpl import supervisor

    raise typer.Exit(supervisor.run(settings, host, port, workers or os.cpu_count() or 1))


@cli.command()
def serve(
    host: Host = "127.0.0.1",
    port: Port = 8000,
    services: Annotated[
        str | None, typer.Option(help="Comma-separated contexts whose routers to mount.")
    ] = None,
    workers: Workers = None,
) -> None:
    """Run only the HTTP API (no workers), in `--workers` processes sharing the port."""
    settings = _settings()
    count = workers or os.cpu_count() or 1
    if count == 1:
        chosen = {s.strip() for s in services.split(",")} if services else None
        _run_api(settings, host, port, Roles(workers=False, migrate=False), chosen)
        return
    if settings.providers_url is None or settings.redis_url is None:
        raise typer.BadParameter(
            "several API processes need the providers in a process of their own and a Redis "
            "for their shared rate-limit windows: set BNPL_PROVIDERS_URL (`bnpl sandbox`) "
            "and BNPL_REDIS_URL, or use --workers 1 (`bnpl up` does all of it)",
            param_hint="--workers",
        )
    # The processes share one database: start the embedded one here, not in each of them.
    os.environ["BNPL_DATABASE_URL"] = database_url(settings)
    if services:
        os.environ["BNPL_SERVICES"] = services
    _announce(settings, host, port)
    uvicorn.run(
        "bnpl.app:api_from_env",
        factory=True,
        workers=count,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        **server_options(settings, processes=count),
    )


@cli.command()
def worker(
    consumers: Annotated[
        str | None, typer.Option(help="Comma-separated consumers to run (default: all).")
    ] = None,
) -> None:
    """Run only the workers: event consumers, time-driven work, the audit sealer."""
    settings = _settings()

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        async with start_platform(settings, Roles(workers=True, migrate=False)) as rt:
            if consumers:
                wanted = {c.strip() for c in consumers.split(",")}
                for name in list(rt.bus.subscriptions):
                    if name not in wanted:
                        del rt.bus.subscriptions[name]
            tune_for_service()
            typer.echo("BNPL worker running", err=True)
            await stop.wait()

    uvloop.run(main())  # the event loop uvicorn gives the API processes


@cli.command("migrate")
def migrate_command() -> None:
    """Apply pending migrations and exit."""
    settings = _settings()

    async def main() -> None:
        import asyncpg

        from bnpl.kit.migrate import migrate

        conn = await asyncpg.connect(database_url(settings))
        try:
            applied = await migrate(conn)
        finally:
            await conn.close()
        typer.echo("\n".join(applied) if applied else "nothing to apply")

    asyncio.run(main())


@cli.command()
def sandbox(
    host: Host = "127.0.0.1",
    port: Port = 8100,
    smtp_port: Annotated[
        int | None,
        typer.Option(help="Also receive the platform's email over SMTP on this port."),
    ] = None,
) -> None:
    """Run the sandbox provider simulators standalone (gateway, KYC, KYB, bureau, SMS, push,
    payouts; with --smtp-port, the SMTP server too)."""
    settings = _settings()
    from bnpl.providers.sandbox import standalone_app

    typer.echo(f"sandbox providers on http://{host}:{port}", err=True)
    if smtp_port is not None:
        typer.echo(f"sandbox SMTP server on smtp://{host}:{smtp_port}", err=True)
    tune_for_service()
    uvicorn.run(
        standalone_app(settings, smtp_port),
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        proxy_headers=False,  # a provider on loopback: no proxy in front of it
    )


# The purchase load generator (issue 13); registered last, the other commands are above.
from bnpl.bench.cli import bench  # noqa: E402
from bnpl.bench.simulate import simulate  # noqa: E402
from bnpl.lake.cli import lake, replay  # noqa: E402
from bnpl.messaging.kafka.cli import kafka  # noqa: E402

cli.command()(bench)
cli.command()(simulate)  # weeks of traffic on the sandbox clock (issue 13)
cli.add_typer(kafka, name="kafka")  # a local Apache Kafka cluster (issue 11)
cli.add_typer(lake, name="lake")  # the event archive (issue 11)
cli.command()(replay)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
