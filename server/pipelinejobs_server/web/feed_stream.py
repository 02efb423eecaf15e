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

from collections.abc import AsyncIterator, Mapping
from typing import Any

from pipelinejobs_client import AsyncJobsClient, views
from pipelinejobs_client.api.v1 import feed_pb2

from . import sse

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


def encode(item: feed_pb2.FeedEntry | feed_pb2.FeedBookmark) -> str:
    if isinstance(item, feed_pb2.FeedEntry):
        return sse.message("entry", views.feed_entry(item), item.cursor)
    return sse.message("bookmark", {"cursor": item.cursor}, item.cursor)


def stream(client: AsyncJobsClient, cursor: str, chosen: dict[str, Any]) -> AsyncIterator[str]:
    """The SSE body: a retry hint, then each entry after ``cursor`` (from now without one), bookmarks and
    heartbeats."""
    watch = client.watch_events(
        after_cursor=cursor,
        from_now=not cursor,
        bookmarks=True,
        full=True,
        timeout=sse.WATCH_S,
        resume=False,
        **chosen,
    )
    return sse.stream(watch, encode, name="feed-sse")
