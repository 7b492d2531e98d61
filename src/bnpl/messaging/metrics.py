"""The bus's state as Prometheus gauges, read from its tables when `/metrics` is scraped
(one query; every API process reports the same platform-wide figures, so dashboards and
alerts take their `max`):

- `bnpl_outbox_unsequenced_events`: committed events the sequencer has not ordered yet;
- `bnpl_outbox_head_position`: the last position given out. Events waiting while the head
  stands still is a stuck outbox: nothing reaches any consumer. (No age from `occurred_at`:
  that is the business clock, which the sandbox moves by days.)
- `bnpl_consumer_lag_events{consumer}`: positions between a consumer's cursor and the head
  (a cursor moves over events the consumer does not want only when it next runs, so an
  idle consumer can show a lag that is not work) and `bnpl_consumer_cursor_age_seconds`,
  since its cursor last moved;
- `bnpl_dead_letters{consumer}`: events a consumer gave up on, waiting for an operator.
"""

from __future__ import annotations

from prometheus_client import Gauge

from bnpl.kit.db import Database

UNSEQUENCED = Gauge("bnpl_outbox_unsequenced_events", "Committed events not yet sequenced")
HEAD = Gauge("bnpl_outbox_head_position", "Last position the sequencer gave out")
LAG = Gauge("bnpl_consumer_lag_events", "Positions between a consumer and the head", ["consumer"])
CURSOR_AGE = Gauge(
    "bnpl_consumer_cursor_age_seconds", "Seconds since a consumer's cursor moved", ["consumer"]
)
DEAD_LETTERS = Gauge("bnpl_dead_letters", "Events a consumer gave up on", ["consumer"])

_QUERY = """
WITH head AS (SELECT last_position FROM messaging.sequencer WHERE id = 1),
unsequenced AS (SELECT count(*) AS n FROM messaging.events WHERE position IS NULL)
SELECT 'cursor' AS kind, c.consumer, (SELECT last_position FROM head) - c.position AS value,
       extract(epoch FROM now() - c.updated_at) AS age
FROM messaging.cursors c
UNION ALL
SELECT 'dead', consumer, count(*), 0 FROM messaging.dead_letters GROUP BY consumer
UNION ALL
SELECT 'unsequenced', NULL, n, 0 FROM unsequenced
UNION ALL
SELECT 'head', NULL, last_position, 0 FROM head
"""


_dead_consumers: set[str] = set()  # to zero a consumer's gauge once its letters are replayed


async def refresh(db: Database) -> None:
    """Set the gauges from the bus's tables (a scrape's worth of work: small tables, and
    the unsequenced events by their partial index)."""
    rows = await db.fetch(_QUERY)
    dead: dict[str, int] = {}
    for row in rows:
        kind, consumer, value = row["kind"], row["consumer"], row["value"]
        if kind == "cursor":
            LAG.labels(consumer).set(max(0, value))
            CURSOR_AGE.labels(consumer).set(float(row["age"]))
        elif kind == "dead":
            dead[consumer] = value
        elif kind == "unsequenced":
            UNSEQUENCED.set(value)
        else:
            HEAD.set(value)
    _dead_consumers.update(dead)
    for consumer in _dead_consumers:
        DEAD_LETTERS.labels(consumer).set(dead.get(consumer, 0))
