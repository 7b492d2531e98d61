"""The archive as a DuckDB table `events` (id, type, aggregate_id, occurred_at, merchant_id,
consumer_id, data as JSON, seq, date), and SQL over it."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

from bnpl.lake.archiver import Lake


@contextmanager
def connect(lake: Lake) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB with the view `events` over the lake's Parquet files."""
    con = duckdb.connect()
    try:
        files = lake.files()
        if files:
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            con.execute(
                f"""
                CREATE VIEW events AS
                SELECT id, type, aggregate_id, occurred_at, merchant_id, consumer_id,
                       data::JSON AS data, seq, date
                FROM read_parquet([{listing}], hive_partitioning = true)
                """
            )
        else:  # an empty archive: the same columns, no rows
            con.execute(
                "CREATE VIEW events AS SELECT NULL::VARCHAR AS id, NULL::VARCHAR AS type, "
                "NULL::VARCHAR AS aggregate_id, NULL::TIMESTAMPTZ AS occurred_at, "
                "NULL::VARCHAR AS merchant_id, NULL::VARCHAR AS consumer_id, "
                "NULL::JSON AS data, NULL::BIGINT AS seq, NULL::DATE AS date WHERE false"
            )
        yield con
    finally:
        con.close()


def query(lake: Lake, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """(column names, rows) of `sql` over the archive."""
    with connect(lake) as con:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        return columns, result.fetchall()


def as_csv(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(rows)
    return out.getvalue()


def as_table(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    cells = [columns, *([("" if v is None else str(v)) for v in row] for row in rows)]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines) + "\n"
