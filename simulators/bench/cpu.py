"""Who used the machine's cores during a timed window: CPU time per process group (each group's
processes and all their descendants, from /proc) and the machine's busy share, so that a
latency figure reads beside what the services, the broker, the database and the load
generator itself took (the 12,000/s latency of 2026-12-06 was the simulated devices' CPU)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from devstack.procs import descendants
from simulators.bench.infra import cpu_s


def _cpu_s(pid: int) -> float:
    try:
        return cpu_s(pid)
    except (OSError, IndexError):
        return 0.0  # gone meanwhile


def _machine() -> tuple[int, int]:
    """(all, idle) jiffies of every CPU since boot."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(values), values[3] + values[4]  # idle + iowait


class CpuWindow:
    """`start()`, the timed work, `stop()`: cores each group used in between."""

    def __init__(
        self, groups: Mapping[str, Sequence[int | None]], *, alone: Sequence[str] = ()
    ) -> None:
        """`groups`: each one's processes (their descendants count too, except for the groups
        named in `alone`, whose children belong to other groups)."""
        self._roots = {name: [p for p in pids if p] for name, pids in groups.items()}
        self._alone = set(alone)
        self._before: dict[str, dict[int, float]] = {}
        self._machine = (0, 0)
        self._wall = 0.0

    def _pids(self) -> dict[str, dict[int, float]]:
        return {
            name: {
                pid: _cpu_s(pid)
                for root in roots
                for pid in ((root,) if name in self._alone else (root, *descendants(root)))
            }
            for name, roots in self._roots.items()
        }

    def start(self, now: float) -> None:
        self._before = self._pids()
        self._machine = _machine()
        self._wall = now

    def stop(self, now: float) -> dict[str, float]:
        """Cores per group (a process born in the window counts all its time), and `machine`:
        the busy share of every core, in cores."""
        after = self._pids()
        total, idle = _machine()
        seconds = max(now - self._wall, 1e-9)
        cores = {
            name: sum(t - self._before[name].get(pid, 0.0) for pid, t in pids.items()) / seconds
            for name, pids in after.items()
        }
        all_jiffies = max(total - self._machine[0], 1)
        busy = 1 - (idle - self._machine[1]) / all_jiffies
        cores["machine"] = busy * (os.cpu_count() or 1)
        return cores
