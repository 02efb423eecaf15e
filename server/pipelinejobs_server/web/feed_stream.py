"""The event feed as Server-Sent Events, for the shim's ``GET /v1/feed/events`` and the dashboard's
activity page: one SSE message per feed entry, its ``id`` the entry's cursor (docs/events.md).

When the connection drops, the browser's EventSource reconnects by itself and sends the last id back as
``Last-Event-ID``; the watch resumes after that cursor, so nothing is missed or repeated (WatchEvents'
own guarantee, carried through). Bookmarks go out as ``bookmark`` messages with the cursor as their id
too, so that a reconnection after a quiet hour resumes near now rather than an hour back. Each stream
ends after ``WATCH_S`` and the browser reconnects: no watch outlives its reader by long. A server that
ends the watch (``WATCH_RESUME``) ends the stream the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pipelinejobs_client import AsyncJobsClient, views
from pipelinejobs_client import errors as client_errors
from pipelinejobs_client.api.v1 import feed_pb2

HEARTBEAT_S = 15.0
WATCH_S = 300.0
RETRY_MS = 2000  # how long the browser waits before reconnecting
MAX_CURSOR = 200

# Query parameters (each repeatable) to the client's filter arguments (requests.feed_filter).
FILTERS = {
    "pipeline": "pipelines",
    "job": "jobs",
    "event": "events",
    "to_state": "to_states",
    "source": "sources",
    "lab": "lab",
    "experiment": "experiment",
    "sample": "sample",
}


def values(params: Any, key: str) -> list[str]:
    """A repeatable parameter's values, each also split at commas (``?event=finish,fail``)."""
    return [part.strip() for raw in params.getlist(key) for part in raw.split(",") if part.strip()]


def filters(params: Any) -> dict[str, Any]:
    """The filter from a request's query string (``?event=finish&event=fail&lab=UW``); the server checks
    the values and names the one that is wrong."""
    chosen: dict[str, Any] = {
        name: values(params, key) for key, name in FILTERS.items() if values(params, key)
    }
    if params.get("include_cancelled", "") in ("1", "true", "yes"):
        chosen["include_cancelled"] = True
    return chosen


def resume_cursor(headers: Mapping[str, str], params: Mapping[str, str]) -> str:
    """The cursor to watch after: the browser's Last-Event-ID wins over the page's ``after``."""
    for raw in (headers.get("last-event-id", ""), params.get("after", "")):
        value = raw.strip()
        if value:
            return value[:MAX_CURSOR]  # longer is no cursor: the server says so, precisely
    return ""


def message(event: str, data: dict[str, Any], event_id: str | None = None) -> str:
    """One SSE message; ``data`` is a single line of JSON, so no field can break the framing."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'), sort_keys=True)}\n\n"


Item = feed_pb2.FeedEntry | feed_pb2.FeedBookmark | Exception | None


async def _pump(
    client: AsyncJobsClient, cursor: str, chosen: dict[str, Any], queue: asyncio.Queue[Item]
) -> None:
    try:
        watch = client.watch_events(
            after_cursor=cursor,
            from_now=not cursor,
            bookmarks=True,
            full=True,
            timeout=WATCH_S,
            resume=False,
            **chosen,
        )
        async for item in watch:
            await queue.put(item)
    except Exception as error:  # handed to the reader, which reports or raises it
        await queue.put(error)
    await queue.put(None)


async def stream(client: AsyncJobsClient, cursor: str, chosen: dict[str, Any]) -> AsyncIterator[str]:
    """The SSE body: a retry hint, then each entry after ``cursor`` (from now without one), bookmarks and
    heartbeats."""
    queue: asyncio.Queue[Item] = asyncio.Queue(maxsize=256)
    pump = asyncio.create_task(_pump(client, cursor, chosen, queue), name="feed-sse")
    try:
        yield f"retry: {RETRY_MS}\n\n"
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), HEARTBEAT_S)
            except TimeoutError:
                yield ": still watching\n\n"
                continue
            if item is None:
                return  # the watch ended (deadline, server shutdown): the browser reconnects
            if isinstance(item, client_errors.DeadlineExceeded | client_errors.WatchResume):
                continue  # our WATCH_S deadline, or the server's: end quietly (None follows)
            if isinstance(item, client_errors.PipelineJobsError):
                yield message("failure", {"reason": item.reason or item.code.name, "message": item.message})
                continue
            if isinstance(item, Exception):
                raise item
            if isinstance(item, feed_pb2.FeedEntry):
                yield message("entry", views.feed_entry(item), item.cursor)
            else:
                yield message("bookmark", {"cursor": item.cursor}, item.cursor)
    finally:
        # The reader left (Starlette cancels us) or the watch ended: stop the gRPC stream too.
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
