"""state changes (ADR 014): what the job counts cost the write path.

An event that changes a job's state also writes its change of the counts (one ``insert_many`` per batch,
before the compare-and-sets); one that does not (most: ``update``) is written as before. Both kinds on
jobs of their own, in the same run: one by one, alternating call by call (``validate`` and ``validated``
take a job from VALIDATED to VALIDATING and back, a state change every time), and from ``threads``
clients at once, round by round, where the group commit writes a batch's changes together.
"""

from __future__ import annotations

import time
from contextlib import ExitStack

from pipelinejobs_client.api.v1 import job_pb2

from .api import Api, JobHandle, connect
from .harness import Environment
from .paired import paired
from .parallel import run_parallel
from .plan import Plan
from .report import progress
from .stats import Row, median, paired_row

SECTION = "state changes"
DATABASE = "bench_state_changes"
CYCLE = (job_pb2.JOB_EVENT_VALIDATE, job_pb2.JOB_EVENT_VALIDATED)
TO_VALIDATED = (
    job_pb2.JOB_EVENT_RUN,
    job_pb2.JOB_EVENT_FINISH,
    job_pb2.JOB_EVENT_VALIDATE,
    job_pb2.JOB_EVENT_VALIDATED,
)


def _validated(api: Api, pipeline: str, name: str) -> JobHandle:
    job = api.create_job(pipeline, {"bench": "state changes", "job": name})
    for event in TO_VALIDATED:
        api.send(job, event, {})
    return job


def _running(api: Api, pipeline: str, name: str) -> JobHandle:
    job = api.create_job(pipeline, {"bench": "state changes", "job": name})
    api.send(job, job_pb2.JOB_EVENT_RUN, {})
    return job


def _changing(api: Api, job: JobHandle, n: int) -> float:
    started = time.perf_counter()
    api.send(job, CYCLE[n % 2], {"n": n})
    return time.perf_counter() - started


def _updating(api: Api, job: JobHandle, n: int) -> float:
    started = time.perf_counter()
    api.update(job, n)
    return time.perf_counter() - started


def measure(env: Environment, plan: Plan) -> list[Row]:
    server = env.start_server(DATABASE)
    one_by_one: dict[str, list[float]] = {"update": [], "change": []}
    rates: dict[str, list[float]] = {"update": [], "change": []}
    with ExitStack() as stack:
        apis = [stack.enter_context(connect(server.address, env.client_key)) for _ in range(plan.threads)]
        pipeline = apis[0].register_pipeline("bench-state-changes")
        changing = [_validated(apis[0], pipeline, f"change-{i}") for i in range(plan.threads)]
        updating = [_running(apis[0], pipeline, f"update-{i}") for i in range(plan.threads)]
        # Each job's cycle must start from VALIDATED: an even number of events per job per round.
        per_thread = plan.events_per_thread - plan.events_per_thread % 2
        for _ in range(plan.throughput_reps):
            pair = paired(
                lambda n: _updating(apis[0], updating[0], n),
                lambda n: _changing(apis[0], changing[0], n),
                2 * (plan.history_window // 2),
            )
            one_by_one["update"].append(median(pair[0]) * 1000)
            one_by_one["change"].append(median(pair[1]) * 1000)
            for kind, jobs, call in (("update", updating, _updating), ("change", changing, _changing)):

                def work(i: int, jobs: list[JobHandle] = jobs, call=call) -> None:  # type: ignore[no-untyped-def]
                    for n in range(per_thread):
                        call(apis[i], jobs[i], n)

                _, seconds = run_parallel(work, plan.threads)
                rates[kind].append(plan.threads * per_thread / seconds)
        progress(f"state changes: {plan.throughput_reps} repetitions measured")
    server.stop()
    env.servers.remove(server)
    return [
        paired_row(
            SECTION,
            "SendEvent one by one [update vs a state change]",
            "ms",
            (("update (no change)", one_by_one["update"]), ("validate/validated", one_by_one["change"])),
        ),
        paired_row(
            SECTION,
            f"SendEvent, {plan.threads} clients [update vs a state change]",
            "events/s",
            (("update (no change)", rates["update"]), ("validate/validated", rates["change"])),
        ),
    ]
