"""How big each measurement is: the full run (~8 minutes) and the ``--quick`` smoke run (~1 minute)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Plan:
    mode: str
    # history: one job grown to ``history_events`` events, against fresh jobs at seq 10.
    history_events: int
    history_reps: int
    history_window: int  # events per repetition and side
    history_gets: int  # GetJob calls per repetition and side
    # collection and list: one database seeded with ``small_jobs`` jobs, another with ``large_jobs``.
    small_jobs: int
    large_jobs: int
    collection_reps: int
    collection_window: int
    collection_gets: int
    collection_creates: int
    list_reps: int
    list_calls: int  # ListJobs calls per repetition, page and side
    list_deep_page: int  # the deepest page compared (capped by what the small database holds)
    # calibration: the find_one_and_update trap at these two collection sizes.
    calibration_small: int
    calibration_large: int
    calibration_calls: int
    # throughput: ``threads`` clients, each cycling over ``jobs_per_thread`` jobs.
    threads: int
    jobs_per_thread: int
    events_per_thread: int  # per round
    throughput_reps: int
    # latency: open-loop calls at ``latency_rate`` per second.
    latency_rate: float
    latency_calls: int  # per repetition and RPC
    latency_reps: int
    # callbacks: ``threads`` HTTP clients against the shim, and as many gRPC clients, round by round.
    callback_jobs_per_thread: int
    callback_posts_per_job: int
    callback_reps: int
    # profile: one round of the throughput workload against a server run under cProfile.
    profile_events_per_thread: int
    page_size: int = 100
    # Whether the seeded jobs get their history entries (ListJobs, the counts and start-up read none).
    seeded_histories: bool = True

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FULL = Plan(
    mode="full",
    history_events=10_000,
    history_reps=5,
    history_window=40,
    history_gets=40,
    small_jobs=10_000,
    large_jobs=100_000,
    collection_reps=5,
    collection_window=30,
    collection_gets=30,
    collection_creates=15,
    list_reps=3,
    list_calls=1,
    list_deep_page=20,
    calibration_small=100,
    calibration_large=3000,
    calibration_calls=30,
    threads=8,
    jobs_per_thread=8,
    events_per_thread=75,
    throughput_reps=5,
    latency_rate=50.0,
    latency_calls=400,
    latency_reps=3,
    callback_jobs_per_thread=2,
    callback_posts_per_job=30,
    callback_reps=5,
    profile_events_per_thread=100,
)

QUICK = Plan(
    mode="quick",
    history_events=1000,
    history_reps=3,
    history_window=20,
    history_gets=20,
    small_jobs=2000,
    large_jobs=8000,
    collection_reps=3,
    collection_window=15,
    collection_gets=15,
    collection_creates=5,
    list_reps=3,
    list_calls=3,
    list_deep_page=3,
    calibration_small=100,
    calibration_large=1000,
    calibration_calls=10,
    threads=8,
    jobs_per_thread=2,
    events_per_thread=25,
    throughput_reps=3,
    latency_rate=50.0,
    latency_calls=100,
    latency_reps=2,
    callback_jobs_per_thread=1,
    callback_posts_per_job=10,
    callback_reps=3,
    profile_events_per_thread=25,
)
