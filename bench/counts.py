"""counts and start-up (ADR 014): CountJobs costs the same over 10x the jobs, and a server starts serving
on a big database at once, building what is missing and counting the jobs after it serves.

The two seeded databases of the collection section (bench/seeding.py). CountJobs (every job, and one
pipeline's) is called alternately on the small and the large database. Start-up is the time from
spawning ``pipelinejobs serve`` to its "listening" line, on each database as it is (indexes built, jobs
counted), and on the large one again after its counters are dropped (a database from before them): then
also the time until its upkeep says done (the first count, in the background).
"""

from __future__ import annotations

import time

from pymongo import MongoClient

from pipelinejobs_client.api.v1 import job_service_pb2

from .api import Api, connect, timed
from .harness import Environment
from .paired import paired
from .plan import Plan
from .report import progress
from .seeding import SeededDatabase, seeded_pair
from .stats import AT_MOST_1_2, Row, Runs, median, paired_row
from .upkeep import wait_for_upkeep

SECTION = "counts"
STARTS = 3


def _start(env: Environment, database: str) -> tuple[float, float]:
    """(seconds to serving, seconds more until the upkeep is done) of a fresh server on ``database``."""
    started = time.monotonic()
    server = env.start_server(database)
    serving = time.monotonic() - started
    upkeep = wait_for_upkeep(server.address)
    server.stop()
    env.servers.remove(server)
    return serving, upkeep


def _count_calls(
    small: SeededDatabase, large: SeededDatabase, env: Environment, plan: Plan
) -> dict[str, list[float]]:
    runs: dict[str, list[float]] = {}
    with (
        connect(small.server.address, env.client_key) as a,
        connect(large.server.address, env.client_key) as b,
    ):
        for scope, pipeline in (("all", ""), ("pipeline", small.pipelines[0])):
            request = job_service_pb2.CountJobsRequest(pipeline_uuid=pipeline)

            def on(api: Api, request: job_service_pb2.CountJobsRequest = request) -> float:
                return timed(lambda: api.jobs.CountJobs(request, metadata=api.metadata, timeout=30))

            for _ in range(plan.list_reps):
                pair = paired(lambda _: on(a), lambda _: on(b), plan.list_calls)
                runs.setdefault(f"{scope}_small", []).append(median(pair[0]) * 1000)
                runs.setdefault(f"{scope}_large", []).append(median(pair[1]) * 1000)
            reply = b.jobs.CountJobs(request, metadata=b.metadata, timeout=30)
            if not reply.exact or (scope == "all" and reply.total != large.jobs):
                raise RuntimeError(f"CountJobs on {large.name} is wrong: {reply}")
    return runs


def measure(env: Environment, plan: Plan) -> list[Row]:
    small, large = seeded_pair(env, plan)
    runs = _count_calls(small, large, env, plan)
    progress("counts: CountJobs measured")
    starts: dict[str, list[float]] = {"small": [], "large": [], "uncounted": [], "recount": []}
    for _ in range(STARTS):
        starts["small"].append(_start(env, small.name)[0])
        starts["large"].append(_start(env, large.name)[0])
    client: MongoClient[dict[str, object]] = MongoClient(env.uri)
    try:
        for _ in range(STARTS):
            client[large.name].drop_collection("job_counts")  # as before the counters existed
            serving, upkeep = _start(env, large.name)
            starts["uncounted"].append(serving)
            starts["recount"].append(upkeep)
    finally:
        client.close()
    progress("counts: start-ups measured")
    ms = {key: [value * 1000 for value in values] for key, values in starts.items()}
    small_label, large_label = f"{small.jobs} jobs", f"{large.jobs} jobs"
    return [
        paired_row(
            SECTION,
            "CountJobs (all jobs)",
            "ms",
            ((small_label, runs["all_small"]), (large_label, runs["all_large"])),
            AT_MOST_1_2,
        ),
        paired_row(
            SECTION,
            "CountJobs (one pipeline)",
            "ms",
            ((small_label, runs["pipeline_small"]), (large_label, runs["pipeline_large"])),
            AT_MOST_1_2,
        ),
        paired_row(
            SECTION, "start-up to serving", "ms", ((small_label, ms["small"]), (large_label, ms["large"]))
        ),
        paired_row(
            SECTION,
            "start-up to serving, counters missing",
            "ms",
            (
                (f"{large.jobs} jobs, counted", ms["large"]),
                (f"{large.jobs} jobs, uncounted", ms["uncounted"]),
            ),
        ),
        Row(
            SECTION,
            "first count after such a start (in the background)",
            "ms",
            f"{large.jobs} jobs",
            Runs.of(ms["recount"]),
        ),
    ]
