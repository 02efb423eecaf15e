"""Server-Sent Events for the job page, fed by ``WatchJob`` (the framing, heartbeats and the stream's end
are web/sse.py's).

Each history entry is one SSE message whose ``id`` is its seq. When the connection drops, the browser's
EventSource reconnects by itself and sends that id back as ``Last-Event-ID``; the watch resumes after it,
so the page misses nothing and repeats nothing (WatchJob's own guarantee, carried through). The browser's
reconnection is the resume, so the client's own is turned off.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from starlette.requests import Request

from pipelinejobs_client import AsyncJobsClient, views
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_server.web import sse


def resume_after(request: Request) -> int:
    """The seq to watch after: the browser's Last-Event-ID wins over the page's ``after``."""
    for raw in (request.headers.get("last-event-id", ""), request.query_params.get("after", "")):
        if raw.strip().isdigit():
            return int(raw.strip())
    return 0


def entry_message(entry: job_pb2.HistoryEvent) -> str:
    view = views.history_event(entry)
    fields = ("seq", "event", "from_state", "to_state", "timestamp", "source", "data", "hash")
    return sse.message("entry", {name: view[name] for name in fields}, entry.seq)


def stream(client: AsyncJobsClient, uuid: str, after: int) -> AsyncIterator[str]:
    """The SSE body: a retry hint, then each entry after ``after`` as it is applied, with heartbeats."""
    watch = client.watch_job(uuid, after_seq=after, timeout=sse.WATCH_S, resume=False)
    return sse.stream(watch, entry_message, name=f"ui-watch-{uuid}")
