"""2. Collection scaling (DESIGN section 9): no write may scan the jobs collection.

On the embedded database ``find_one_and_update`` scans the whole collection even by ``_id``; a write path
that used it would cost O(jobs). Two databases in the same database process, one holding few jobs and one
many, each behind its own server process; calls alternate between the two, so the only difference between
the sides is the size of the collections.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from pymongo import MongoClient

from . import calibration
from .api import Api, JobHandle, connect
from .harness import Environment
from .paired import paired
from .parallel import map_parallel
from .plan import Plan
from .report import progress
from .stats import Comparison, Summary

SECTION = "2 collection"
WARM_SEQ = 10


@dataclass
class Side:
    name: str
    api: Api
    pipeline: str
    job: JobHandle
    created: int = 0  # jobs created while measuring; each is cancelled again, keeping the count fixed


def _fill(env: Environment, address: str, pipeline: str, name: str, count: int, threads: int) -> None:
    """``count`` jobs with distinct data, created concurrently (their cost is not measured)."""
    with ExitStack() as stack:
        apis = [stack.enter_context(connect(address, env.client_key)) for _ in range(threads)]
        map_parallel(
            lambda worker, i: apis[worker].create_job(pipeline, {"bench": "fill", "db": name, "i": i}),
            count,
            threads,
        )


def _side(env: Environment, stack: ExitStack, name: str, jobs: int, plan: Plan) -> Side:
    server = env.start_server(f"bench_{name}")
    stack.callback(server.stop)
    api = stack.enter_context(connect(server.address, env.client_key))
    pipeline = api.register_pipeline(f"bench-{name}")
    started = time.perf_counter()
    _fill(env, server.address, pipeline, name, jobs - 1, plan.fill_threads)
    job = api.create_job(pipeline, {"bench": "measured", "db": name})
    api.start(job, WARM_SEQ)
    progress(f"collection: {jobs} jobs in bench_{name} in {time.perf_counter() - started:.1f} s")
    return Side(name, api, pipeline, job)


def _count(uri: str, database: str) -> int:
    """Jobs in a database after measuring: the created-and-cancelled ones must be gone again."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        return client[database]["jobs"].count_documents({})
    finally:
        client.close()


def _timed_create(side: Side) -> float:
    side.created += 1
    seconds, job = side.api.timed_create(side.pipeline, {"bench": "created", "n": side.created})
    side.api.cancel(job)  # never RUNNING, so CancelJob deletes it: the collection keeps its size
    return seconds


def measure(env: Environment, plan: Plan) -> list[Comparison]:
    samples: dict[str, list[float]] = {key: [] for key in ("small_events", "large_events")}
    samples.update({key: [] for key in ("small_gets", "large_gets", "small_creates", "large_creates")})
    with ExitStack() as stack:
        small = _side(env, stack, "small", plan.small_jobs, plan)
        large = _side(env, stack, "large", plan.large_jobs, plan)
        for _ in range(plan.collection_reps):
            base, other = paired(
                lambda i: small.api.timed_update(small.job, i)[0],
                lambda i: large.api.timed_update(large.job, i)[0],
                plan.collection_window,
            )
            samples["small_events"] += base
            samples["large_events"] += other
            base, other = paired(
                lambda _: small.api.timed_get(small.job)[0],
                lambda _: large.api.timed_get(large.job)[0],
                plan.collection_gets,
            )
            samples["small_gets"] += base
            samples["large_gets"] += other
            base, other = paired(
                lambda _: _timed_create(small), lambda _: _timed_create(large), plan.collection_creates
            )
            samples["small_creates"] += base
            samples["large_creates"] += other
        progress(f"collection: {plan.collection_reps} repetitions measured")
        counts = {side.name: _count(env.uri, f"bench_{side.name}") for side in (small, large)}
    calibrated = calibration.measure(env.uri, plan)
    progress("collection: calibration measured")

    def comparison(name: str, key: str) -> Comparison:
        return Comparison(
            SECTION,
            name,
            "ms",
            f"{counts['small']} jobs",
            Summary.of(samples[f"small_{key}"]).scaled(1000.0),
            f"{counts['large']} jobs",
            Summary.of(samples[f"large_{key}"]).scaled(1000.0),
            plan.target_ratio,
        )

    return [
        comparison("SendEvent(update)", "events"),
        comparison("GetJob", "gets"),
        comparison("CreateJob (new job)", "creates"),
        *calibrated,
    ]
