"""The cyclic garbage collector, tuned for the long-running processes (API, worker, sandbox).

A collection run allocates tens of thousands of short-lived objects a second (rows, domain
values, statement arguments), and nearly all of them are freed by reference counting. With
CPython's default thresholds (700, 10, 10) the collector still ran constantly, and now and
then walked every object the process had made since it started (modules, pydantic models,
the app): in `scripts/bench_collections.py`, 1,500 collections, 11 of them over 190,000
objects at about 0.1 s each, and a sixth of the worker's CPU. So, once a process has
started:

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
