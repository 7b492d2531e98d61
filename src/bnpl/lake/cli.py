"""`bnpl lake archive|query` and `bnpl replay`."""

from __future__ import annotations

import asyncio
import signal
from typing import Annotated, Literal

import typer

from bnpl.config import Settings
from bnpl.kit.db import Database

# pyarrow and DuckDB are imported by each command, not here: every `bnpl` command imports
# this module, and pyarrow starts a thread and takes memory that `bnpl serve` and `bnpl
# worker` have no use for (the crash test's fork server refuses to fork with a thread).

lake = typer.Typer(
    help="The event archive: Parquet files queried with DuckDB.", no_args_is_help=True
)


def _database_url(settings: Settings) -> str:
    from bnpl.kit.embedded import start_embedded_postgres

    return settings.database_url or start_embedded_postgres(settings.pg_data_dir)


@lake.command("archive")
def archive_command(
    follow: Annotated[bool, typer.Option(help="Keep archiving until Ctrl-C/SIGTERM.")] = False,
    interval: Annotated[float, typer.Option(help="Seconds between runs with --follow.")] = 10.0,
) -> None:
    """Append the events not archived yet to the lake (`BNPL_LAKE_URL`)."""
    from bnpl.lake.archiver import Lake, archive

    settings = Settings()
    target = Lake(settings.lake)

    async def main() -> None:
        db = Database(_database_url(settings), min_size=1, max_size=2)
        await db.open()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        try:
            while True:
                done = await archive(db, target)
                typer.echo(f"{done} events archived in {target.url}", err=True)
                if not follow:
                    return
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                    return
                except TimeoutError:
                    pass
        finally:
            await db.close()

    asyncio.run(main())


@lake.command("query")
def query_command(
    sql: Annotated[str, typer.Argument(help="SQL over the table `events`.")],
    format: Annotated[Literal["table", "csv"], typer.Option(help="Output format.")] = "table",
) -> None:
    """Run SQL with DuckDB over the archive, as the table `events` (id, type, aggregate_id,
    occurred_at, merchant_id, consumer_id, data as JSON, seq, date)."""
    from bnpl.lake.archiver import Lake
    from bnpl.lake.duck import as_csv, as_table, query

    columns, rows = query(Lake(Settings().lake), sql)
    typer.echo((as_csv if format == "csv" else as_table)(columns, rows), nl=False)


def replay() -> None:
    """Rebuild the reporting read model from the event archive alone."""
    from bnpl.lake.archiver import Lake
    from bnpl.lake.replay import replay_reporting

    settings = Settings()

    async def main() -> int:
        db = Database(_database_url(settings), min_size=1, max_size=2)
        await db.open()
        try:
            return await replay_reporting(db, Lake(settings.lake))
        finally:
            await db.close()

    typer.echo(f"reporting rebuilt from {asyncio.run(main())} archived events", err=True)
