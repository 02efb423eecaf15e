"""list (ADR 004): ListJobs with filters costs the same over 10x the jobs, on the first page and a deep one.

The two seeded databases of the collection section (bench/seeding.py: ten pipelines, five labs, four
states in equal shares) each behind their own server. For each filter, the token of a deep page is found
by walking the small database's pages once; then the first page and the deep page are fetched alternately
from the small and the large database, so that the only difference between the sides is the number of jobs.

One token serves both databases: a token names a position (creation or update time, uuid) and the
filters, not a database; the seeded pipelines have the same uuids in both, and the newest ``small_jobs``
jobs of the large database have the same pipelines, states and labs at the same times as the small
database's. So the position of page k of the small database is page k of the large one, without walking
the large database's pages, which costs seconds each there (docs/performance.md says why).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

import grpc

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2

from .api import Api, connect, timed
from .cpu import cpu_seconds
from .harness import Environment
from .parallel import check_stop
from .plan import Plan
from .report import progress
from .seeding import SeededDatabase, seeded
from .stats import AT_MOST_1_2, Row, median, paired_row

SECTION = "list"
Request = job_service_pb2.ListJobsRequest


@dataclass(frozen=True)
class Query:
    name: str
    build: Callable[[SeededDatabase], Request]


QUERIES = (
    Query("pipeline", lambda db: Request(pipeline_uuid=db.pipelines[1])),
    Query(
        "pipeline + state",
        lambda db: Request(pipeline_uuid=db.pipelines[1], states=[job_pb2.JOB_STATE_RUNNING]),
    ),
    Query("lab", lambda db: Request(links=job_pb2.JobLinks(lab=["bench-lab-2"]))),
    Query("none, by update time", lambda db: Request(order_by=job_service_pb2.JOB_ORDER_UPDATE_TIME_DESC)),
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
            for db in (seeded(env, plan.small_jobs), seeded(env, plan.large_jobs))
        )
        for query in QUERIES:
            deep, page = _token_before(small.api, query, small.db, plan.page_size, plan.list_deep_page)
            for token, title in (("", "first page"), (deep, f"page {page}")):
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
