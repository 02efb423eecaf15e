"""The dashboard's pages and feeds: the jobs table, one job, its live events, its provenance.

Everything is read through the gRPC API with the user's key (``AsyncJobsClient``); nothing is cached but
the state machine. Counts per state come from ``CountJobs`` (the service's counters, exact and one cheap
read however many jobs exist) when no filter but the pipeline applies. With a link or time filter, which
the counters do not keep, they are ``ListJobs`` listings of at most ``COUNT_CAP`` jobs, one per state,
fetched side by side: exact up to the cap and shown as "500+" past it, which keeps a page view's cost
bounded. (One reply holds fewer jobs than asked when they are big, as every list reply is cut to the
server's message size: a count follows the tokens up to the cap.) A job page shows its history a page at
a time (history.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pipelinejobs_client import AsyncJobsClient, views
from pipelinejobs_client.api.v1 import job_pb2, pipeline_pb2
from pipelinejobs_client.names import state_name
from pipelinejobs_server.domain.identity import checked_uuid

from . import diagram, history, live
from .dashboard import Dashboard, feed, page
from .filters import PAGE_SIZES, STATES, JobQuery, form_moment

COUNT_CAP = 500
PIPELINES_SHOWN = 200  # the pipeline filter lists this many; more are still reachable by uuid in the URL


@dataclass(frozen=True)
class StateCount:
    state: str
    count: int
    capped: bool

    @property
    def text(self) -> str:
        return f"{self.count}+" if self.capped else str(self.count)


async def count_states(client: AsyncJobsClient, query: JobQuery) -> list[StateCount]:
    """Jobs per state under the other filters (the state filter itself is ignored, so every count shows)."""
    if not query.counted_by_listing:
        reply = await client.count_jobs(query.pipeline)
        found = {state_name(c.state): int(c.count) for c in reply.counts}
        # Not exact only while the server counts a database it found without counters: say so as "+".
        return [StateCount(state, found.get(state, 0), not reply.exact) for state in STATES]

    async def one(state: str) -> StateCount:
        count, token = 0, ""
        while True:
            reply = await client.list_jobs(
                **query.list_arguments(states=(state,)), page_size=COUNT_CAP - count, page_token=token
            )
            count += len(reply.jobs)
            token = reply.next_page_token
            if not token or count >= COUNT_CAP:
                return StateCount(state, count, bool(token))

    return list(await asyncio.gather(*(one(state) for state in STATES)))


def _pipeline_names(pipelines: list[pipeline_pb2.Pipeline]) -> dict[str, str]:
    return {pipeline.uuid: pipeline.name for pipeline in pipelines}


def _row(job: job_pb2.Job, names: dict[str, str]) -> dict[str, Any]:
    view = views.job(job)
    view["pipeline_name"] = names.get(job.pipeline_uuid, job.pipeline_uuid[:8])
    return view


@page
async def jobs_table(dashboard: Dashboard, request: Request, client: AsyncJobsClient) -> Response:
    query = JobQuery.from_params(request.query_params)
    listing, counts, pipelines = await asyncio.gather(
        client.list_jobs(**query.list_arguments(), page_size=query.size, page_token=query.page),
        count_states(client, query),
        client.list_pipelines(page_size=PIPELINES_SHOWN),
    )
    names = _pipeline_names(list(pipelines.pipelines))
    return dashboard.render(
        request,
        "jobs.html",
        {
            "query": query,
            "jobs": [_row(job, names) for job in listing.jobs],
            "next_href": query.next_href(listing.next_page_token) if listing.next_page_token else None,
            "previous_href": query.previous_href(),
            "counts": counts,
            "total": sum(c.count for c in counts),
            "total_capped": any(c.capped for c in counts),
            "count_cap": COUNT_CAP,
            "pipelines": sorted(names.items(), key=lambda item: (item[1], item[0])),
            "states": STATES,
            "page_sizes": PAGE_SIZES,
            "from_value": form_moment(query.created_from) if query.created_from else "",
            "to_value": form_moment(query.created_to) if query.created_to else "",
        },
    )


def _path(entries: list[job_pb2.HistoryEvent]) -> list[str]:
    """The states the job went through in ``entries``, in order, without repeats in a row."""
    states: list[str] = []
    for entry in entries:
        state = views.history_event(entry)["to_state"]
        if not states or states[-1] != state:
            states.append(state)
    return states


@page
async def job_page(dashboard: Dashboard, request: Request, client: AsyncJobsClient) -> Response:
    uuid = checked_uuid(request.path_params["uuid"], "uuid")
    until = history.before(request.query_params)
    job = await client.get_job(uuid)
    shown, machine, pipeline = await asyncio.gather(
        history.window(client, job, until), dashboard.machine(client), client.get_pipeline(job.pipeline_uuid)
    )
    view = views.job(job)
    return dashboard.render(
        request,
        "job.html",
        {
            "job": view,
            "pipeline": views.pipeline(pipeline),
            "history": [views.history_event(entry) for entry in reversed(shown.entries)],
            "window": shown,
            # Only the newest entries follow the job live; a page of older ones stays as it is.
            "live": until is None,
            "path": _path(shown.entries),
            "diagram": diagram.build(machine, shown.entries, view["state"] or ""),
        },
    )


@feed
async def job_events(dashboard: Dashboard, request: Request, client: AsyncJobsClient) -> Response:
    uuid = checked_uuid(request.path_params["uuid"], "uuid")
    await client.get_job(uuid)  # answer 404/401 now, before the stream's 200 has gone out
    return StreamingResponse(
        live.stream(client, uuid, live.resume_after(request)),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},  # no proxy buffering
    )


@feed
async def provenance(dashboard: Dashboard, request: Request, client: AsyncJobsClient) -> Response:
    uuid = checked_uuid(request.path_params["uuid"], "uuid")
    document = await client.export_provenance(uuid)
    return Response(
        document,
        media_type="application/json",
        headers={"content-disposition": f'inline; filename="job-{uuid}.prov.json"'},
    )
