"""latency: SendEvent and CreateJob at a moderate fixed rate, open loop.

Calls are started on a fixed schedule (``latency_rate`` per second) whether or not the earlier ones have
finished - gRPC futures, so one thread can keep the schedule - and each call's latency runs from its
scheduled start to its completion. A slow call therefore also counts the delay it causes the calls
behind it (no "coordinated omission"). SendEvent goes round-robin over twenty RUNNING jobs; each CreateJob
makes a new job. Each repetition runs both, in alternating order; p50 and p99 are taken per repetition.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import grpc

from pipelinejobs_client.api.v1 import job_pb2

from .api import TIMEOUT_S, Api, JobHandle, connect, create_request, send_request
from .harness import Environment
from .parallel import check_stop
from .plan import Plan
from .report import progress
from .stats import Row, Runs, Target, paired_row, percentile

SECTION = "latency"
DATABASE = "bench_latency"
JOBS = 20
# SendEvent(update) p50 and p99 at 50/s in docs/performance.md before group commit, and the bounds of
# issue 15 on the ratio to them.
BEFORE_GROUP_COMMIT = {50: (9.21, Target(1.1)), 99: (14.0, Target(2.0))}

Start = Callable[[int], "grpc.Future[Any]"]  # starts call i and returns its future


def open_loop(start: Start, rate: float, count: int) -> list[float]:
    """Latencies (s) of ``count`` calls started ``1/rate`` apart, each from its scheduled start."""
    latencies: list[float] = [0.0] * count
    errors: list[BaseException] = []
    done = threading.Semaphore(0)
    began = time.perf_counter() + 0.05

    def finish(index: int, scheduled: float) -> Callable[[grpc.Future[Any]], None]:
        def record(future: grpc.Future[Any]) -> None:
            latencies[index] = time.perf_counter() - scheduled
            error = future.exception()
            if error is not None:
                errors.append(error)
            done.release()

        return record

    for index in range(count):
        check_stop()
        scheduled = began + index / rate
        pause = scheduled - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
        start(index).add_done_callback(finish(index, scheduled))
    for _ in range(count):
        if not done.acquire(timeout=TIMEOUT_S):
            raise RuntimeError("a call did not complete within its deadline")
    if errors:
        raise RuntimeError(f"{len(errors)} of {count} calls failed; the first: {errors[0]}")
    return latencies


def _starters(api: Api, pipeline: str, jobs: list[JobHandle], rep: int) -> dict[str, Start]:
    def send(index: int) -> grpc.Future[Any]:
        request = send_request(jobs[index % len(jobs)], job_pb2.JOB_EVENT_UPDATE, {"n": index, "rep": rep})
        return api.jobs.SendEvent.future(request, metadata=api.metadata, timeout=TIMEOUT_S)

    def create(index: int) -> grpc.Future[Any]:
        request = create_request(pipeline, {"bench": "latency", "rep": rep, "n": index})
        return api.jobs.CreateJob.future(request, metadata=api.metadata, timeout=TIMEOUT_S)

    return {"SendEvent(update)": send, "CreateJob (new job)": create}


def measure(env: Environment, plan: Plan) -> list[Row]:
    server = env.start_server(DATABASE)
    runs: dict[tuple[str, int], list[float]] = {}
    with connect(server.address, env.client_key) as api:
        pipeline = api.register_pipeline("bench-latency")
        jobs = [api.create_job(pipeline, {"bench": "latency", "job": j}) for j in range(JOBS)]
        for job in jobs:
            api.start(job, 5)
        for rep in range(plan.latency_reps):
            starters = list(_starters(api, pipeline, jobs, rep).items())
            for name, start in starters if rep % 2 == 0 else starters[::-1]:
                latencies = open_loop(start, plan.latency_rate, plan.latency_calls)
                for q in (50, 99):
                    runs.setdefault((name, q), []).append(percentile(latencies, q) * 1000)
        progress(f"latency: {plan.latency_reps} repetitions of {plan.latency_calls} calls per RPC")
    server.stop()
    label = f"{plan.latency_rate:g}/s open loop, {plan.latency_calls} calls/run"
    rows = [Row(SECTION, f"{name} p{q}", "ms", label, Runs.of(values)) for (name, q), values in runs.items()]
    # Against the figures of the run before group commit (docs/performance.md, 2026-11-29): recorded, not
    # measured in this run, so the ratio carries the machine's drift as well.
    for q, (before, target) in BEFORE_GROUP_COMMIT.items():
        values = runs[("SendEvent(update)", q)]
        rows.append(
            paired_row(
                SECTION,
                f"SendEvent(update) p{q} [ms]",
                "ms",
                (("before group commit (recorded)", [before] * len(values)), (label, values)),
                target,
            )
        )
    return rows
