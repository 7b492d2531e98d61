"""CPU and memory of the processes under test, read from /proc (Linux).

A process's CPU is counted with its reaped children's (`utime + stime + cutime + cstime`), and
a group is a root process with every live descendant: a child that exits during the window
(a spawned worker) moves its time into its parent's `cutime` when it is reaped, so a group's
total stays continuous between two snapshots whatever came and went. A PostgreSQL server may
serve other databases too (the embedded default is shared by whoever runs in the checkout):
its group keeps only the backends of the benchmark's database and the server's own processes
(the platform's pool keeps its connections, so its backends live through the window).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class ProcessSample:
    pid: int
    label: str
    cpu_s: float  # own and reaped children's, since the process started
    rss_bytes: int
    pss_bytes: int | None  # shared pages divided among their users (adds up across a group)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces and parentheses).
    return text.rpartition(")")[2].split()


def _cpu_and_rss(fields: list[str], reaped: bool = True) -> tuple[float, int]:
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17, rss=24.
    ticks = int(fields[11]) + int(fields[12])
    if reaped:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / _TICKS, int(fields[21]) * _PAGE


def children_by_parent() -> dict[int, list[int]]:
    """Every live process's children (one scan of /proc)."""
    found: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat_fields(int(entry.name))
        if fields is not None:
            found.setdefault(int(fields[1]), []).append(int(entry.name))
    return found


def tree(root: int, children: Mapping[int, list[int]]) -> list[int]:
    """`root` and all its live descendants."""
    pids, todo = [], [root]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, ()))
    return pids


def label_of(pid: int) -> str:
    """A short name for a process: its command line without the interpreter."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return "?"
    if not argv:
        return "?"
    if "-m" in argv[:-1]:
        argv = argv[argv.index("-m") + 1 :]
    elif argv[0].endswith(("python", "python3")) or "/python3." in argv[0]:
        argv = argv[1:] or argv
    if any("multiprocessing" in a for a in argv):
        return "spawned child"
    text = " ".join(os.path.basename(argv[0]).split()[:1] + argv[1:])
    return text[:60]


def pss_of(pid: int) -> int | None:
    """The proportional set size (bytes), if /proc/PID/smaps_rollup is readable."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def sample(pids: Iterable[int], unreaped: Iterable[int] = ()) -> list[ProcessSample]:
    """Each process's figures; those in `unreaped` without their reaped children's time."""
    found, own_only = [], set(unreaped)
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        cpu, rss = _cpu_and_rss(fields, reaped=pid not in own_only)
        found.append(ProcessSample(pid, label_of(pid), cpu, rss, pss_of(pid)))
    return found


# A PostgreSQL backend's title: `postgres: USER DATABASE CLIENT ACTIVITY`; the server's own
# processes (checkpointer, walwriter, io workers...) name no client.
_BACKEND = re.compile(r"^postgres: (\S+) (\S+) (\[local\]|\S+\(\d+\))")


def serves_database(pid: int, database: str) -> bool:
    """Whether a PostgreSQL process works for `database`: its backends, and the server's
    own processes (which write the WAL of every database)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            title = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return False
    found = _BACKEND.match(title)
    return found is None or found.group(2) == database


@dataclass
class Group:
    """The processes of one role: `roots` and (if `with_children`) their descendants."""

    name: str
    roots: list[int]
    with_children: bool = True
    per_process: bool = False  # report each process of the group on its own line
    # A PostgreSQL server shared with others: only the backends of this database and the
    # server's own processes, and the postmaster without its reaped children (the backends
    # of every database that came and went).
    database: str | None = None

    def pids(self, children: Mapping[int, list[int]]) -> list[int]:
        if not self.with_children:
            return list(self.roots)
        found = [pid for root in self.roots for pid in tree(root, children)]
        if self.database is not None:
            found = [p for p in found if p in self.roots or serves_database(p, self.database)]
        return found

    def sample(self, children: Mapping[int, list[int]]) -> list[ProcessSample]:
        unreaped = self.roots if self.database is not None else ()
        return sample(self.pids(children), unreaped)


@dataclass(frozen=True, slots=True)
class Usage:
    """One group's (or process's) use over a window."""

    name: str
    pids: list[int]
    cpu_s: float
    rss_bytes: int
    pss_bytes: int | None


@dataclass
class Snapshot:
    at: float  # time.perf_counter()
    machine_busy_s: float
    machine_total_s: float
    groups: dict[str, list[ProcessSample]] = field(default_factory=dict)


def machine_times() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot."""
    with open("/proc/stat", encoding="ascii") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / _TICKS, sum(values) / _TICKS


def snapshot(groups: Iterable[Group], at: float) -> Snapshot:
    busy, total = machine_times()
    taken = Snapshot(at, busy, total)
    children = children_by_parent()
    for group in groups:
        taken.groups[group.name] = group.sample(children)
    return taken


def _filtered_cpu(name: str, taken: Sequence[Snapshot]) -> float:
    """CPU of a group whose processes come and go without their time reaching a counted
    parent: each process from its first sight in the window (or its start) to its last."""
    first_seen: dict[int, float] = {}
    last_seen: dict[int, float] = {}
    for k, snap in enumerate(taken):
        for s in snap.groups.get(name, []):
            first_seen.setdefault(s.pid, s.cpu_s if k == 0 else 0.0)
            last_seen[s.pid] = s.cpu_s
    return sum(last_seen[pid] - first_seen[pid] for pid in last_seen)


def usage(groups: Iterable[Group], taken: Sequence[Snapshot]) -> list[Usage]:
    """What each group (and each process of a `per_process` group) used between the first
    and the last of `taken` (the window's ends, with the snapshots in between). A process
    that appeared in between counts from its start; one that went is in its parent's
    reaped-children time, or, for a group of a shared PostgreSQL server (whose postmaster's
    reaped time holds every database's backends), counted up to its last snapshot."""
    first, last = taken[0], taken[-1]
    found: list[Usage] = []
    for group in groups:
        before = {s.pid: s for s in first.groups.get(group.name, [])}
        after = last.groups.get(group.name, [])
        total_before = sum(s.cpu_s for s in before.values())
        total_after = sum(s.cpu_s for s in after)
        cpu = (
            _filtered_cpu(group.name, taken)
            if group.database is not None
            else total_after - total_before
        )
        pss = [s.pss_bytes for s in after]
        found.append(
            Usage(
                group.name,
                [s.pid for s in after],
                max(0.0, cpu),
                sum(s.rss_bytes for s in after),
                sum(p for p in pss if p is not None) if None not in pss else None,
            )
        )
        if group.per_process and len(after) > 1:
            for s in after:
                was = before[s.pid].cpu_s if s.pid in before else 0.0
                found.append(
                    Usage(
                        f"  {s.label} [{s.pid}]",
                        [s.pid],
                        max(0.0, s.cpu_s - was),
                        s.rss_bytes,
                        s.pss_bytes,
                    )
                )
    return found
