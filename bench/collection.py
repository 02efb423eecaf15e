"""collection (DESIGN section 9): no call on one job may cost more because the database holds more jobs.

On the embedded database ``find_one_and_update`` scans the whole collection even by ``_id``; a write path
that used it would cost O(jobs). Two seeded databases (bench/seeding.py) in the same database process,
one with ``small_jobs`` jobs and one with ``large_jobs``, each behind its own server; calls on one job in
each alternate, so the only difference between the sides is the size of the collections. CreateJob is
measured too: each job it creates is cancelled again (never RUNNING, so it is deleted), keeping the size.
"""

from __future__ import annotations

from contextlib import ExitStack
from dataclasses import dataclass

from . import calibration
from .api import Api, JobHandle, connect
from .harness import Environment
from .paired import paired
from .plan import Plan
from .report import progress
from .seeding import SeededDatabase, seeded_pair
from .stats import AT_MOST_1_2, Row, median, paired_row

SECTION = "collection"
WARM_SEQ = 10


@dataclass
class Side:
    database: SeededDatabase
    api: Api
    job: JobHandle
    created: int = 0

    @property
    def label(self) -> str:
        return f"{self.database.jobs} jobs"


def _side(env: Environment, stack: ExitStack, database: SeededDatabase) -> Side:
    api = stack.enter_context(connect(database.server.address, env.client_key))
    job = api.create_job(database.pipelines[0], {"bench": "measured"})
    api.start(job, WARM_SEQ)
    return Side(database, api, job)


def _timed_create(side: Side) -> float:
    side.created += 1
    seconds, job = side.api.timed_create(side.database.pipelines[0], {"bench": "created", "n": side.created})
    side.api.cancel(job)
    return seconds


def measure(env: Environment, plan: Plan) -> list[Row]:
    runs: dict[str, list[float]] = {}

    def add(key: str, pair: tuple[list[float], list[float]]) -> None:
        runs.setdefault(f"small_{key}", []).append(median(pair[0]) * 1000)
        runs.setdefault(f"large_{key}", []).append(median(pair[1]) * 1000)

    with ExitStack() as stack:
        small, large = (_side(env, stack, db) for db in seeded_pair(env, plan))
        for _ in range(plan.collection_reps):
            add(
                "events",
                paired(
                    lambda i: small.api.timed_update(small.job, i)[0],
                    lambda i: large.api.timed_update(large.job, i)[0],
                    plan.collection_window,
                ),
            )
            add(
                "gets",
                paired(
                    lambda _: small.api.timed_get(small.job)[0],
                    lambda _: large.api.timed_get(large.job)[0],
                    plan.collection_gets,
                ),
            )
            add(
                "creates",
                paired(
                    lambda _: _timed_create(small), lambda _: _timed_create(large), plan.collection_creates
                ),
            )
        progress(f"collection: {plan.collection_reps} repetitions measured")
    rows = [
        paired_row(
            SECTION,
            name,
            "ms",
            ((small.label, runs[f"small_{key}"]), (large.label, runs[f"large_{key}"])),
            AT_MOST_1_2,
        )
        for name, key in (
            ("SendEvent(update)", "events"),
            ("GetJob", "gets"),
            ("CreateJob (new job)", "creates"),
        )
    ]
    rows += calibration.measure(env.uri, plan)
    progress("collection: calibration measured")
    return rows
