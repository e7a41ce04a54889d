"""Process figures of the benchmarks, from /proc: CPU seconds and RSS of process trees (a service is one process; nginx
and the original's node may have children), a sampler of peak RSS per named process during a load, and the machine
line of a report."""

from __future__ import annotations

import os
import platform
import threading
from pathlib import Path
from typing import Any

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo += children.get(current, [])
    return found


def trees(pids: dict[str, int]) -> dict[str, list[int]]:
    """The process tree of each named root (one scan of /proc for all)."""
    return {name: tree(pid) for name, pid in pids.items()}


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds used so far by exactly ``pids`` (pass a tree for descendants)."""
    total = 0
    for pid in set(pids):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / _TICKS


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in set(pids):
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE
        except OSError:
            continue
    return total / 1e6


def pss_mb(pids: list[int]) -> float:
    """Proportional set size of the processes: each shared page counted once across them (a parent and its forked
    children share most pages, which RSS counts twice); about what a container holding them is charged."""
    total = 0
    for pid in set(pids):
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except OSError:
            continue
    return total / 1e6


def mariadb_pids() -> list[int]:
    """The MariaDB server process(es) on this machine (shared with everything else on the box)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() in ("mariadbd", "mysqld"):
                found.append(int(comm.parent.name))
        except OSError:
            continue
    return found


class CpuMeter:
    """CPU seconds of several named process trees between ``start()`` and ``stop()`` (trees are taken at start:
    the processes must not fork during the load)."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = dict(pids)
        self.used: dict[str, float] = {}

    def start(self) -> CpuMeter:
        self._trees = trees(self.pids)
        self._before = {name: cpu_seconds(t) for name, t in self._trees.items()}
        return self

    def stop(self) -> dict[str, float]:
        self.used = {name: cpu_seconds(t) - self._before[name] for name, t in self._trees.items()}
        return self.used

    def __enter__(self) -> CpuMeter:
        return self.start()

    def __exit__(self, *_: Any) -> None:
        self.stop()


class MemoryWatch:
    """RSS of named process trees: ``idle()`` now (after start-up, before any load) and the peak sampled every
    ``interval`` seconds while ``watching``. The peak is kept across several ``with`` blocks."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = dict(pids)
        self.interval = interval
        self.idle_mb: dict[str, float] = {}
        self.idle_pss_mb: dict[str, float] = {}
        self.peak_mb: dict[str, float] = dict.fromkeys(pids, 0.0)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def idle(self) -> dict[str, float]:
        found = trees(self.pids)
        self.idle_mb = {name: rss_mb(t) for name, t in found.items()}
        self.idle_pss_mb = {name: pss_mb(t) for name, t in found.items()}
        return self.idle_mb

    def sample(self) -> None:
        for name, t in trees(self.pids).items():
            self.peak_mb[name] = max(self.peak_mb.get(name, 0.0), rss_mb(t))

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def __enter__(self) -> MemoryWatch:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.sample()


def machine_line() -> str:
    load = os.getloadavg()
    return (
        f"{os.cpu_count()} cores, {platform.machine()}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
        " (shared machine, load generators on the same box)"
    )
