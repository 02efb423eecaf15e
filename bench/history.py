"""1. History scaling (DESIGN section 5): the cost of an event must not grow with the job's history.

One job is grown to N events. Each repetition then creates a fresh job, brings it to seq 10, and alternates
calls between the two: GetJob on each, then SendEvent('update') on each. The fresh job's events are
#11 onwards, the long job's #N+1 onwards, measured in the same seconds on the same collections.
"""

from __future__ import annotations

import time

from .api import Api, JobHandle, connect
from .harness import Environment
from .paired import paired
from .plan import Plan
from .report import progress
from .stats import Comparison, Summary

SECTION = "1 history"
EARLY_SEQ = 10  # the fresh job's seq before its measured events


def _repetition(api: Api, fresh: JobHandle, long_job: JobHandle, plan: Plan) -> dict[str, list[float]]:
    early_gets, late_gets = paired(
        lambda _: api.timed_get(fresh)[0], lambda _: api.timed_get(long_job)[0], plan.history_gets
    )
    early_events, late_events = paired(
        lambda i: api.timed_update(fresh, i)[0],
        lambda i: api.timed_update(long_job, i)[0],
        plan.history_window,
    )
    return {
        "early_events": early_events,
        "late_events": late_events,
        "early_gets": early_gets,
        "late_gets": late_gets,
    }


def measure(env: Environment, plan: Plan) -> list[Comparison]:
    server = env.start_server("bench_history")
    with connect(server.address, env.client_key) as api:
        pipeline = api.register_pipeline("bench-history")
        long_job = api.create_job(pipeline, {"bench": "history", "job": "long"})
        started = time.perf_counter()
        progress(f"history: growing one job to {plan.history_events} events")
        api.start(long_job, plan.history_events)
        seq = api.get_seq(long_job)
        progress(f"history: {seq} events in {time.perf_counter() - started:.1f} s")

        samples: dict[str, list[float]] = {
            "early_events": [],
            "late_events": [],
            "early_gets": [],
            "late_gets": [],
        }
        late_first = seq + 1
        for rep in range(plan.history_reps):
            fresh = api.create_job(pipeline, {"bench": "history", "job": "fresh", "rep": rep})
            api.start(fresh, EARLY_SEQ)
            for key, values in _repetition(api, fresh, long_job, plan).items():
                samples[key] += values
        late_last = api.get_seq(long_job)
        progress(f"history: {plan.history_reps} repetitions measured")

    server.stop()
    early_range = f"#{EARLY_SEQ + 1}-#{EARLY_SEQ + plan.history_window}"
    late_range = f"#{late_first}-#{late_last}"
    ms = 1000.0
    return [
        Comparison(
            SECTION,
            "SendEvent(update)",
            "ms",
            f"fresh jobs, events {early_range}",
            Summary.of(samples["early_events"]).scaled(ms),
            f"one job, events {late_range}",
            Summary.of(samples["late_events"]).scaled(ms),
            plan.target_ratio,
        ),
        Comparison(
            SECTION,
            "GetJob",
            "ms",
            f"at seq {EARLY_SEQ}",
            Summary.of(samples["early_gets"]).scaled(ms),
            f"at seq >= {late_first - 1}",
            Summary.of(samples["late_gets"]).scaled(ms),
            plan.target_ratio,
        ),
    ]
