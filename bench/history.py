"""history (DESIGN section 5): the cost of an event must not grow with the job's history.

One job gets ``history_events - 1`` entries: its first ten through the API (create, run, updates), the
rest written straight into the log with a valid hash chain (bench/seeding.py), which takes seconds
instead of the minute the API would need; VerifyHistory checks the whole chain before anything is
measured. Each repetition then creates a fresh job, brings it to seq 10 through the API, and alternates
calls between the two: GetJob on each, then SendEvent('update') on each, so the long job's measured
events are #N onwards and the fresh job's #11 onwards, in the same seconds on the same collections.
"""

from __future__ import annotations

import time
from functools import partial

from .api import Api, JobHandle, connect, timed
from .harness import Environment
from .paired import paired
from .plan import Plan
from .report import progress
from .seeding import extend_history
from .stats import AT_MOST_1_2, Row, median, paired_row

SECTION = "history"
EARLY_SEQ = 10  # the fresh job's seq before its measured events
DATABASE = "bench_history"


def _repetition(api: Api, fresh: JobHandle, long_job: JobHandle, plan: Plan) -> dict[str, float]:
    """Per-side medians, in ms, of one repetition."""
    early_gets, late_gets = paired(
        lambda _: api.timed_get(fresh)[0], lambda _: api.timed_get(long_job)[0], plan.history_gets
    )
    early_events, late_events = paired(
        lambda i: api.timed_update(fresh, i)[0],
        lambda i: api.timed_update(long_job, i)[0],
        plan.history_window,
    )
    samples = {
        "early_events": early_events,
        "late_events": late_events,
        "early_gets": early_gets,
        "late_gets": late_gets,
    }
    return {key: median(values) * 1000 for key, values in samples.items()}


def _grow(env: Environment, api: Api, pipeline: str, events: int) -> JobHandle:
    long_job = api.create_job(pipeline, {"bench": "history", "job": "long"})
    api.start(long_job, EARLY_SEQ)
    started = time.perf_counter()
    added = extend_history(env.uri, DATABASE, long_job.uuid, events - 1)
    verdict = api.verify(long_job)
    if not verdict.valid or verdict.checked != events - 1:
        raise RuntimeError(f"the seeded history does not verify: {verdict}")
    progress(
        f"history: {added} entries written into the log and verified "
        f"({verdict.checked} in all) in {time.perf_counter() - started:.1f} s"
    )
    return long_job


def measure(env: Environment, plan: Plan) -> list[Row]:
    server = env.start_server(DATABASE)
    runs: dict[str, list[float]] = {}
    verify_runs: dict[str, list[float]] = {"early": [], "late": []}
    with connect(server.address, env.client_key) as api:
        pipeline = api.register_pipeline("bench-history")
        long_job = _grow(env, api, pipeline, plan.history_events)
        late_first = api.get_seq(long_job) + 1
        for rep in range(plan.history_reps):
            fresh = api.create_job(pipeline, {"bench": "history", "job": "fresh", "rep": rep})
            api.start(fresh, EARLY_SEQ)
            for key, value in _repetition(api, fresh, long_job, plan).items():
                runs.setdefault(key, []).append(value)
            if rep < 3:  # a full chain check reads every entry: three runs say enough
                verify_runs["early"].append(timed(partial(api.verify, fresh)) * 1000)
                verify_runs["late"].append(timed(partial(api.verify, long_job)) * 1000)
        late_last = api.get_seq(long_job)
        progress(f"history: {plan.history_reps} repetitions measured")
    server.stop()

    early = f"fresh jobs, #{EARLY_SEQ + 1}-#{EARLY_SEQ + plan.history_window}"
    late = f"one job, #{late_first}-#{late_last}"
    return [
        paired_row(
            SECTION,
            "SendEvent(update)",
            "ms",
            ((early, runs["early_events"]), (late, runs["late_events"])),
            AT_MOST_1_2,
        ),
        paired_row(
            SECTION,
            "GetJob",
            "ms",
            ((f"at seq {EARLY_SEQ}", runs["early_gets"]), (f"at seq >= {late_first - 1}", runs["late_gets"])),
            AT_MOST_1_2,
        ),
        paired_row(
            SECTION,
            "VerifyHistory (reads every entry)",
            "ms",
            (
                (f"{EARLY_SEQ}+ entries", verify_runs["early"]),
                (f"{late_first - 1}+ entries", verify_runs["late"]),
            ),
        ),
    ]
