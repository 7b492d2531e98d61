"""CPU and memory of the processes under test, read from /proc (Linux).

A process's CPU is counted with its reaped children's (`utime + stime + cutime + cstime`), and
a group is a root process with every live descendant: a child that exits during the window
(a PostgreSQL backend, a spawned worker) moves its time into its parent's `cutime` when it is
reaped, so a group's total stays continuous between two snapshots whatever came and went.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


@dataclass(frozen=True, slots=True)
class ProcessSample:
    pid: int
    label: str
    cpu_s: float  # own and reaped children's, since the process started
    rss_bytes: int


def _stat_fields(pid: int) -> list[str] | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    # Fields after the command name (which may hold spaces and parentheses).
    return text.rpartition(")")[2].split()


def _cpu_and_rss(fields: list[str]) -> tuple[float, int]:
    # fields[0] is field 3 (state): utime=14, stime=15, cutime=16, cstime=17, rss=24.
    ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
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


def sample(pids: Iterable[int]) -> list[ProcessSample]:
    found = []
    for pid in pids:
        fields = _stat_fields(pid)
        if fields is None:
            continue
        cpu, rss = _cpu_and_rss(fields)
        found.append(ProcessSample(pid, label_of(pid), cpu, rss))
    return found


@dataclass
class Group:
    """The processes of one role: `roots` and (if `with_children`) their descendants."""

    name: str
    roots: list[int]
    with_children: bool = True
    per_process: bool = False  # report each process of the group on its own line

    def pids(self, children: Mapping[int, list[int]]) -> list[int]:
        if not self.with_children:
            return list(self.roots)
        return [pid for root in self.roots for pid in tree(root, children)]


@dataclass(frozen=True, slots=True)
class Usage:
    """One group's (or process's) use over a window."""

    name: str
    pids: list[int]
    cpu_s: float
    rss_bytes: int


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
        taken.groups[group.name] = sample(group.pids(children))
    return taken


def usage(groups: Iterable[Group], first: Snapshot, last: Snapshot) -> list[Usage]:
    """What each group (and each process of a `per_process` group) used between two
    snapshots. A process that appeared in between counts from its start; one that went is in
    its parent's reaped-children time."""
    found: list[Usage] = []
    for group in groups:
        before = {s.pid: s for s in first.groups.get(group.name, [])}
        after = last.groups.get(group.name, [])
        total_before = sum(s.cpu_s for s in before.values())
        total_after = sum(s.cpu_s for s in after)
        found.append(
            Usage(
                group.name,
                [s.pid for s in after],
                max(0.0, total_after - total_before),
                sum(s.rss_bytes for s in after),
            )
        )
        if group.per_process and len(after) > 1:
            for s in after:
                was = before[s.pid].cpu_s if s.pid in before else 0.0
                found.append(
                    Usage(f"  {s.label} [{s.pid}]", [s.pid], max(0.0, s.cpu_s - was), s.rss_bytes)
                )
    return found
