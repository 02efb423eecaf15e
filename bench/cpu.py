"""CPU time spent by each process of a run, so that a rate can be explained by who used the cores.

On this machine the database is the bottleneck: a round's rate is close to one core divided by the
database's CPU time per event. Reading each process's counters before and after a round says how much
of it the database, the server, the shim and this client used (Linux ``/proc``; zeros elsewhere).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int | None) -> float:
    """User plus system CPU seconds of a process (this one when ``pid`` is None)."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    try:
        fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115 - tiny read
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


@dataclass
class CpuMeter:
    """``start()``, do the work, ``per(count)``: CPU milliseconds per unit of work, by process name."""

    processes: Mapping[str, int | None]  # name -> pid; None is this process (the benchmark's clients)

    def __post_init__(self) -> None:
        self._started: dict[str, float] = {}

    def start(self) -> None:
        self._started = {name: cpu_seconds(pid) for name, pid in self.processes.items()}

    def per(self, count: int) -> dict[str, float]:
        return {
            name: (cpu_seconds(pid) - self._started[name]) * 1000 / max(count, 1)
            for name, pid in self.processes.items()
        }
