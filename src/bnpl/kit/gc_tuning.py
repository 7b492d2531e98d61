"""The cyclic garbage collector, tuned for the long-running processes (API, worker, sandbox).

A collection run allocates tens of thousands of short-lived objects a second (rows, domain
values, statement arguments), and nearly all of them are freed by reference counting. With
CPython's default thresholds (700, 10, 10) the collector still ran about 140 times a second,
and every 10th-100th time it walked every object the process had made since it started
(modules, pydantic models, the app): 16% of a worker's CPU in a collection run
(`scripts/bench_collections.py`). So, once a process has started:

- what exists then is frozen out of the collector's walks (`gc.freeze`): it lives as long
  as the process anyway;
- the youngest generation is collected every 50,000 net allocations instead of 700, and
  the older ones less often. Garbage with cycles still goes, a little later, within a few
  megabytes of memory.

Not for tests or short scripts: frozen objects are never collected.
"""

from __future__ import annotations

import gc
from typing import Final

THRESHOLDS: Final = (50_000, 20, 100)


def tune_for_service() -> None:
    """Freeze what the process made while starting, and collect young objects less often."""
    gc.collect()  # what start-up left as garbage is not frozen with the rest
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
