"""The Data Lake: every event archived in date-partitioned Parquet files, queried with DuckDB.

- `archive(db, lake)`: append the events not archived yet (`bnpl lake archive [--follow]`);
- `query(lake, sql)`: SQL over the table `events` (`bnpl lake query "SQL" [--format csv]`);
- `replay_reporting(db, lake)`: the reporting read model rebuilt from the archive
  (`bnpl replay`).

The lake is a local folder (`BNPL_LAKE_URL`, default `<data dir>/lake`) or an URL pyarrow
opens (`s3://bucket/prefix`). Nothing imports the lake; it reads the outbox table
(`messaging.events`) and hands events to the reporting facade.
"""

from bnpl.lake.archive import Lake, archive
from bnpl.lake.query import as_csv, as_table, query
from bnpl.lake.replay import archived_events, replay_reporting

__all__ = ["Lake", "archive", "archived_events", "as_csv", "as_table", "query", "replay_reporting"]
