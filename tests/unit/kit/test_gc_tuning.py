"""`tune_for_service`, in a process of its own: frozen objects are never collected, so the
test process itself must not be tuned."""

from __future__ import annotations

import json
import subprocess
import sys

from bnpl.kit.gc_tuning import THRESHOLDS

PROBE = """
import gc, json
from bnpl.kit.gc_tuning import tune_for_service
before = gc.get_freeze_count()
tune_for_service()
print(json.dumps({"before": before, "frozen": gc.get_freeze_count(),
                  "thresholds": gc.get_threshold()}))
"""


def test_start_up_objects_are_frozen_and_young_ones_collected_less_often() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    seen = json.loads(out)
    assert seen["before"] == 0
    assert seen["frozen"] > 1000  # the interpreter's and the imported modules' objects
    assert tuple(seen["thresholds"]) == THRESHOLDS
    assert THRESHOLDS[0] > 700  # above CPython's default
