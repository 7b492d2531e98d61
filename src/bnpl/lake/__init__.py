"""The Data Lake: every event archived in date-partitioned Parquet files, queried with DuckDB.

- `archive(db, lake)`: append the events not archived yet (`bnpl lake archive [--follow]`);
- `query(lake, sql)`: SQL over the table `events` (`bnpl lake query "SQL" [--format csv]`);
- `replay_reporting(db, lake)`: the reporting read model rebuilt from the archive
  (`bnpl replay`).

The lake is a local folder (`BNPL_LAKE_URL`, default `<data dir>/lake`) or an URL pyarrow
opens (`s3://bucket/prefix`). Nothing imports the lake; it reads the outbox table
(`messaging.events`) and hands events to the reporting facade.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bnpl.lake.archiver import Lake, archive
    from bnpl.lake.duck import as_csv, as_table, query
    from bnpl.lake.replay import archived_events, replay_reporting

# Imported on first use, not with the package: `bnpl`'s command line imports `bnpl.lake.cli`
# for every command, and pyarrow (a thread, tens of MB) is no business of `bnpl serve`. No
# submodule is named like a name exported here: importing it would shadow that name.
_WHERE = {
    "Lake": "archiver",
    "archive": "archiver",
    "as_csv": "duck",
    "as_table": "duck",
    "query": "duck",
    "archived_events": "replay",
    "replay_reporting": "replay",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"bnpl.lake.{_WHERE[name]}"), name)
    raise AttributeError(f"module 'bnpl.lake' has no attribute {name!r}")


__all__ = ["Lake", "archive", "archived_events", "as_csv", "as_table", "query", "replay_reporting"]
