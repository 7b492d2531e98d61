"""A fork server for the crash tests: `bnpl worker` processes in milliseconds.

Importing the platform takes seconds (lightgbm and its numpy and scipy), far
too long to start a worker fifty times in one test. This process imports `bnpl.cli` once and
then forks, on request, a child that runs exactly what `bnpl worker` runs (`bnpl.cli.main`
with the given arguments), in a fresh event loop with its own pools and connections: a
separate process like any other, which the test kills with SIGKILL.

Protocol, one line each way:
- `spawn <args...>` -> the child's pid (its stdout goes to this process's stderr);
- `reap <pid>` -> the child's wait status, once it has exited;
- end of input: every child still alive is killed, and this process exits.

Start it with `OPENBLAS_NUM_THREADS=1` and `OMP_NUM_THREADS=1` so that nothing it imports
starts a thread (forking a process with threads is unsafe); it refuses to fork otherwise.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading

import httpx

from bnpl import cli, contexts
from bnpl.config import Settings
from bnpl.gateway import RateLimiter

PR_SET_PDEATHSIG = 1


def _child(args: list[str]) -> None:
    # Die with the fork server, whatever kills it: no worker outlives the test.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(2, 1)  # the protocol owns stdout
    sys.argv = ["bnpl", *args]
    code = 0
    try:
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        code = 1
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main() -> None:
    contexts.modules()  # everything a worker imports, imported once here
    # ... and what is imported only when a first client is made (httpx, limits' redis).
    httpx.AsyncClient()
    RateLimiter(Settings().redis_url)
    if threading.active_count() != 1 or len(os.listdir("/proc/self/task")) != 1:
        raise SystemExit("threads are running: set OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1")
    children: set[int] = set()
    print("ready", flush=True)
    try:
        for line in sys.stdin:
            command, *args = line.split()
            if command == "spawn":
                pid = os.fork()
                if pid == 0:
                    _child(args)
                children.add(pid)
                print(pid, flush=True)
            elif command == "reap":
                pid = int(args[0])
                _, status = os.waitpid(pid, 0)
                children.discard(pid)
                print(status, flush=True)
            else:
                print(f"error unknown command {command!r}", flush=True)
    finally:
        for pid in children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)


if __name__ == "__main__":
    main()
