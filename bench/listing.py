"""list (ADR 004): ListJobs costs the same over 10x the jobs, for every filter and order, on the first page
and a deep one, and for a sparse filter (a lab with three jobs whatever the size).

The two seeded databases of the collection section (bench/seeding.py: ten pipelines, five labs, four
states in equal shares) each behind their own server. For each filter, the token of a deep page is found
by walking the small database's pages once; then the first page and the deep page are fetched alternately
from the small and the large database, so that the only difference between the sides is the number of jobs.

One token serves both databases: a token names a position (creation or update time, uuid) and the
filters, not a database; the seeded pipelines have the same uuids in both, and the newest ``small_jobs``
jobs of the large database have the same pipelines, states and labs at the same times as the small
database's. So the position of page k of the small database is page k of the large one, newest first,
without walking the large database's pages. Oldest first, the small database's page k lies in the middle
of the large one: a deep page all the same, which is what the row compares.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta

import grpc
from google.protobuf import timestamp_pb2

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2

from .api import Api, connect, timed
from .cpu import cpu_seconds
from .harness import Environment
from .parallel import check_stop
from .plan import Plan
from .report import progress
from .seeding import NEWEST, SPARSE_LAB, SeededDatabase, seeded_pair
from .stats import AT_MOST_1_2, Row, median, paired_row

SECTION = "list"
Request = job_service_pb2.ListJobsRequest


@dataclass(frozen=True)
class Query:
    name: str
    build: Callable[[SeededDatabase], Request]


# The creation times of the newest 5000 jobs: the same jobs in both databases (half of the small one).
RECENT_S = 5000
_STATE = job_pb2.JOB_STATE_RUNNING
_BY_UPDATE = job_service_pb2.JOB_ORDER_UPDATE_TIME_DESC


def _recent(db: SeededDatabase) -> job_service_pb2.TimeRange:
    """The creation times of the newest ``RECENT_S`` jobs."""
    start, end = timestamp_pb2.Timestamp(), timestamp_pb2.Timestamp()
    start.FromDatetime(NEWEST - timedelta(seconds=RECENT_S))
    end.FromDatetime(NEWEST + timedelta(seconds=1))
    return job_service_pb2.TimeRange(start_time=start, end_time=end)


# Every filter and order ListJobs offers, one row each (and the deep page), plus the sparse lab.
QUERIES = (
    Query("none, by creation time", lambda db: Request()),
    Query("none, by update time", lambda db: Request(order_by=_BY_UPDATE)),
    Query("none, oldest first", lambda db: Request(order_by=job_service_pb2.JOB_ORDER_CREATE_TIME_ASC)),
    Query(
        "none, least recently updated first",
        lambda db: Request(order_by=job_service_pb2.JOB_ORDER_UPDATE_TIME_ASC),
    ),
    Query("pipeline", lambda db: Request(pipeline_uuid=db.pipelines[1])),
    Query("pipeline, by update time", lambda db: Request(pipeline_uuid=db.pipelines[1], order_by=_BY_UPDATE)),
    Query("pipeline + state", lambda db: Request(pipeline_uuid=db.pipelines[1], states=[_STATE])),
    Query("state", lambda db: Request(states=[_STATE])),
    Query("two states", lambda db: Request(states=[_STATE, job_pb2.JOB_STATE_FAILED])),
    Query("lab", lambda db: Request(links=job_pb2.JobLinks(lab=["bench-lab-2"]))),
    Query(
        "lab, by update time",
        lambda db: Request(links=job_pb2.JobLinks(lab=["bench-lab-2"]), order_by=_BY_UPDATE),
    ),
    Query("two labs", lambda db: Request(links=job_pb2.JobLinks(lab=["bench-lab-2", "bench-lab-3"]))),
    Query("experiment", lambda db: Request(links=job_pb2.JobLinks(experiment=["bench-experiment-7"]))),
    Query("sample", lambda db: Request(links=job_pb2.JobLinks(sample=[f"bench-sample-{db.jobs - 1}"]))),
    Query("creation time range", lambda db: Request(create_time=_recent(db))),
    Query(
        "update time range, by update time", lambda db: Request(update_time=_recent(db), order_by=_BY_UPDATE)
    ),
    Query("sparse lab (3 jobs)", lambda db: Request(links=job_pb2.JobLinks(lab=[SPARSE_LAB]))),
)


def _request(query: Query, db: SeededDatabase, page_size: int, token: str = "") -> Request:
    request = query.build(db)
    request.page_size = page_size
    request.page_token = token
    return request


def _token_before(api: Api, query: Query, db: SeededDatabase, page_size: int, page: int) -> tuple[str, int]:
    """The token that fetches page ``page`` (1-based), or the last full page if there are fewer."""
    token, reached = "", 1
    reply = api.list_jobs(_request(query, db, page_size))
    while reached < page and reply.next_page_token:
        following = api.list_jobs(_request(query, db, page_size, reply.next_page_token))
        if len(following.jobs) < page_size:
            break  # the next page is short: stay on a full one
        token, reached, reply = reply.next_page_token, reached + 1, following
    return token, reached


@dataclass
class Side:
    db: SeededDatabase
    api: Api

    @property
    def label(self) -> str:
        return f"{self.db.jobs} jobs"

    def fetch(self, query: Query, page_size: int, token: str) -> float:
        """Seconds one page took; infinite if the server gave up on the database (UNAVAILABLE)."""
        request = _request(query, self.db, page_size, token)
        replies: list[job_service_pb2.ListJobsResponse] = []
        try:
            seconds = timed(lambda: replies.append(self.api.list_jobs(request)))
        except grpc.RpcError as error:
            if error.code() is not grpc.StatusCode.UNAVAILABLE:
                raise
            progress(f"list: {query.name} on {self.label}: UNAVAILABLE ({error.details()})")
            return math.inf
        if not replies[0].jobs:
            raise RuntimeError(f"{query.name} on {self.label}: an empty page")
        return seconds


def _quiet(database_pid: int | None, limit_s: float = 120.0) -> None:
    """Wait until the database process is idle: it goes on with a query its client gave up on."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        before = cpu_seconds(database_pid)
        time.sleep(0.5)
        if cpu_seconds(database_pid) - before < 0.1:
            return


def _pages(env: Environment, small: Side, large: Side, query: Query, token: str, plan: Plan) -> list[float]:
    """Per-run seconds of (small, large), alternating which goes first; stops at a large-side failure."""
    runs: list[float] = []
    for rep in range(plan.list_reps):
        check_stop()
        sides = (small, large) if rep % 2 == 0 else (large, small)
        seconds = {
            side.label: median([side.fetch(query, plan.page_size, token) for _ in range(plan.list_calls)])
            for side in sides
        }
        runs += [seconds[small.label], seconds[large.label]]
        if math.isinf(seconds[large.label]):
            _quiet(env.database_pid)
            break
    return runs


def measure(env: Environment, plan: Plan) -> list[Row]:
    rows: list[Row] = []
    with ExitStack() as stack:
        small, large = (
            Side(db, stack.enter_context(connect(db.server.address, env.client_key)))
            for db in seeded_pair(env, plan)
        )
        for query in QUERIES:
            deep, page = _token_before(small.api, query, small.db, plan.page_size, plan.list_deep_page)
            pages = [("", "first page")] + ([(deep, f"page {page}")] if page > 1 else [])
            for token, title in pages:
                runs = [seconds * 1000 for seconds in _pages(env, small, large, query, token, plan)]
                rows.append(
                    paired_row(
                        SECTION,
                        f"ListJobs {query.name}, {title}",
                        "ms",
                        ((small.label, runs[0::2]), (large.label, runs[1::2])),
                        AT_MOST_1_2,
                    )
                )
            progress(f"list: {query.name} measured (deep page {page})")
    return rows
