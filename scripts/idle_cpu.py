"""What an idle platform costs: `bnpl up` on a fresh embedded database, left alone, its CPU
read from /proc over a window (issue 13's target: under 1% of a core, everything included).

    uv run python scripts/idle_cpu.py [--settle 20] [--window 60]

Prints one line per process group (the platform's tree, PostgreSQL) and the total, in % of
one core. The platform runs as `make run` runs it, with its own data folder (removed after).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bnpl.bench import procstat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settle", type=float, default=20.0, help="seconds after start-up")
    parser.add_argument("--window", type=float, default=60.0, help="seconds measured")
    parser.add_argument("--port", type=int, default=8391)
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bnpl-idle-"))
    env = {**os.environ, "BNPL_DATA_DIR": str(folder), "BNPL_LOG_LEVEL": "WARNING"}
    for name in ("BNPL_DATABASE_URL", "BNPL_PROVIDERS_URL", "BNPL_SMTP_URL"):
        env.pop(name, None)
    up = subprocess.Popen(
        [sys.executable, "-m", "bnpl.cli", "up", "--port", str(args.port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{args.port}/readyz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline or up.poll() is not None:
                    raise SystemExit("bnpl up did not start") from None
                time.sleep(0.2)
        time.sleep(args.settle)
        postmaster = int((folder / "pgdata" / "postmaster.pid").read_text().split()[0])
        groups = [
            procstat.Group("platform: bnpl up (API, worker, simulators)", [up.pid], True, True),
            procstat.Group("PostgreSQL", [postmaster]),
        ]
        first = procstat.snapshot(groups, time.monotonic())
        time.sleep(args.window)
        last = procstat.snapshot(groups, time.monotonic())
        total = 0.0
        for usage in procstat.usage(groups, [first, last]):
            share = 100 * usage.cpu_s / args.window
            if not usage.name.startswith(" "):  # a group, not one of its processes
                total += share
            print(f"{usage.name:<48} {share:6.2f}% of a core")
        print(f"{'total':<48} {total:6.2f}% of a core over {args.window:g} s idle")
    finally:
        up.send_signal(signal.SIGINT)
        up.wait(60)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
