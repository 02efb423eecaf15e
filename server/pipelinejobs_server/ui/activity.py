"""The activity page: everything that happens to every job, live, filterable (the event feed, ADR 015).

The page itself holds no entries: activity.js opens ``/activity/events`` (Server-Sent Events, fed by
WatchEvents through web/feed_stream.py) with the page's filters, and adds each entry as it comes. The
filters are the feed's own (pipeline, event, state, lab, experiment, sample, job), read from the query
string, so a filtered view is a link. A cursor or filter the server refuses is answered before the
stream starts, as JSON with its status: EventSource then stops instead of retrying it for ever.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from pipelinejobs_client import AsyncJobsClient
from pipelinejobs_server.web import feed_stream

from .dashboard import Dashboard, feed, page
from .filters import STATES


@page
async def activity_page(dashboard: Dashboard, request: Request, client: AsyncJobsClient) -> Response:
    chosen = feed_stream.filters(request.query_params)
    await client.list_events(page_size=1, **chosen)  # a key or a filter the server refuses: the error page
    return dashboard.render(
        request,
        "activity.html",
        {
            "query": request.url.query,
            "states": STATES,
            "chosen": {key: feed_stream.values(request.query_params, key) for key in feed_stream.FILTERS},
            "filtered": bool(chosen),
        },
    )


@feed
async def activity_events(dashboard: Dashboard, request: Request, client: AsyncJobsClient) -> Response:
    chosen = feed_stream.filters(request.query_params)
    cursor = feed_stream.resume_cursor(request.headers, request.query_params)
    # A bad cursor or filter: answered now (4xx JSON), before the stream's 200 has gone out.
    await client.list_events(after_cursor=cursor, page_size=1, **chosen)
    return StreamingResponse(
        feed_stream.stream(client, cursor, chosen),
        media_type="text/event-stream",
        headers={"cache-control": "no-store", "x-accel-buffering": "no"},
    )
