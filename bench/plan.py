"""How big each measurement is: the full run (a few minutes) and the ``--quick`` smoke run (~30 s)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    mode: str
    # Section 1: one job grown to ``history_events`` events, against fresh jobs at seq 10.
    history_events: int
    history_reps: int
    history_window: int  # events per repetition and side
    history_gets: int  # GetJob calls per repetition and side
    # Section 2: the jobs collection of one database holds ``small_jobs``, another ``large_jobs``.
    small_jobs: int
    large_jobs: int
    collection_reps: int
    collection_window: int
    collection_gets: int
    collection_creates: int
    # Section 3: ``threads`` clients, each with its own job, ``events_per_thread`` events per round.
    threads: int
    events_per_thread: int
    throughput_reps: int
    # Threads that create jobs while filling a database (not measured).
    fill_threads: int = 4
    target_ratio: float = 1.2

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FULL = Plan(
    mode="full",
    history_events=3000,
    history_reps=5,
    history_window=50,
    history_gets=50,
    small_jobs=100,
    large_jobs=3000,
    collection_reps=5,
    collection_window=50,
    collection_gets=30,
    collection_creates=20,
    threads=8,
    events_per_thread=100,
    throughput_reps=5,
)

QUICK = Plan(
    mode="quick",
    history_events=1000,
    history_reps=3,
    history_window=30,
    history_gets=20,
    small_jobs=100,
    large_jobs=1000,
    collection_reps=3,
    collection_window=30,
    collection_gets=20,
    collection_creates=10,
    threads=8,
    events_per_thread=25,
    throughput_reps=3,
)
