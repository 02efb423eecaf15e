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

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.service.paging import encode_seq

from .api import TIMEOUT_S, Api, JobHandle, connect, timed
from .harness import Environment
from .paired import paired
from .plan import Plan
from .report import progress
from .seeding import extend_history
from .stats import AT_MOST_1_2, Row, median, paired_row

SECTION = "history"
DEEP = 200  # the deep page starts this many entries before the history's end
LONGER = 10  # the longer history is this many times the long one
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


def _grow(env: Environment, api: Api, pipeline: str, events: int, name: str = "long") -> JobHandle:
    long_job = api.create_job(pipeline, {"bench": "history", "job": name})
    api.start(long_job, EARLY_SEQ)
    started = time.perf_counter()
    added = extend_history(env.uri, DATABASE, long_job.uuid, events - 1)
    # It reads and hashes every entry (0.1-0.6 ms each here): 100,000 take longer than a call's 60 s.
    verdict = api.verify(long_job, timeout_s=max(TIMEOUT_S, events / 200))
    if not verdict.valid or verdict.checked != events - 1:
        raise RuntimeError(f"the seeded history does not verify: {verdict}")
    progress(
        f"history: {added} entries written into the log and verified "
        f"({verdict.checked} in all) in {time.perf_counter() - started:.1f} s"
    )
    return long_job


def _deep_page(api: Api, job: JobHandle, events: int) -> float:
    """Seconds for one ListJobEvents page that starts ``DEEP`` entries before the end of the history."""
    token = encode_seq(f"events:{job.uuid}", events - DEEP)
    request = job_service_pb2.ListJobEventsRequest(uuid=job.uuid, page_size=100, page_token=token)
    return timed(lambda: api.jobs.ListJobEvents(request, metadata=api.metadata, timeout=60))


def _deep_pages(
    env: Environment, api: Api, pipeline: str, long_job: JobHandle, plan: Plan
) -> dict[str, list[float]]:
    """ListJobEvents' deep page on the long history and on one ``LONGER`` times as long, alternately."""
    events = api.get_seq(long_job)
    longer_job = _grow(env, api, pipeline, plan.history_events * LONGER, "longer")
    longer = api.get_seq(longer_job)
    runs: dict[str, list[float]] = {"long": [], "longer": []}
    for _ in range(plan.history_reps):
        pair = paired(
            lambda _: _deep_page(api, long_job, events),
            lambda _: _deep_page(api, longer_job, longer),
            plan.history_gets,
        )
        runs["long"].append(median(pair[0]) * 1000)
        runs["longer"].append(median(pair[1]) * 1000)
    return runs


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
        deep = _deep_pages(env, api, pipeline, long_job, plan)
        progress("history: deep pages measured")
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
            f"ListJobEvents, page of 100 from {DEEP} before the end",
            "ms",
            (
                (f"{late_last} entries", deep["long"]),
                (f"{plan.history_events * LONGER}+ entries", deep["longer"]),
            ),
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
