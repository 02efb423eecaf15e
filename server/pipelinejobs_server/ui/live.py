"""Server-Sent Events for the job page, fed by ``WatchJob``.

Each history entry is one SSE message whose ``id`` is its seq. When the connection drops, the browser's
EventSource reconnects by itself and sends that id back as ``Last-Event-ID``; the watch resumes after it,
so the page misses nothing and repeats nothing (WatchJob's own guarantee, carried through).

A comment line goes out whenever the stream has been quiet for a while, so proxies keep the connection and
a vanished browser is noticed. Each stream ends after ``WATCH_S`` and the browser reconnects: no watch
outlives its reader by long, and a stream never pins one server replica forever. When the server ends
the watch first (``WATCH_RESUME``: its maximum duration, or it is stopping), the stream ends the same
way: the browser's reconnection is the resume, so the client's own is turned off.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request

from pipelinejobs_client import AsyncJobsClient, views
from pipelinejobs_client import errors as client_errors
from pipelinejobs_client.api.v1 import job_pb2

HEARTBEAT_S = 15.0
WATCH_S = 300.0
RETRY_MS = 2000  # how long the browser waits before reconnecting


def resume_after(request: Request) -> int:
    """The seq to watch after: the browser's Last-Event-ID wins over the page's ``after``."""
    for raw in (request.headers.get("last-event-id", ""), request.query_params.get("after", "")):
        if raw.strip().isdigit():
            return int(raw.strip())
    return 0


def message(event: str, data: dict[str, Any], event_id: int | None = None) -> str:
    """One SSE message; ``data`` is a single line of JSON, so no field can break the framing."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


def entry_message(entry: job_pb2.HistoryEvent) -> str:
    view = views.history_event(entry)
    fields = ("seq", "event", "from_state", "to_state", "timestamp", "source", "data", "hash")
    return message("entry", {name: view[name] for name in fields}, entry.seq)


async def _pump(
    client: AsyncJobsClient,
    uuid: str,
    after: int,
    queue: asyncio.Queue[job_pb2.HistoryEvent | Exception | None],
) -> None:
    # Cancelled (the reader left), it just stops: nobody is waiting for the end marker then.
    try:
        async for entry in client.watch_job(uuid, after_seq=after, timeout=WATCH_S, resume=False):
            await queue.put(entry)
    except Exception as error:  # handed to the reader, which reports or raises it
        await queue.put(error)
    await queue.put(None)


async def stream(client: AsyncJobsClient, uuid: str, after: int) -> AsyncIterator[str]:
    """The SSE body: a retry hint, then each entry after ``after`` as it is applied, with heartbeats."""
    queue: asyncio.Queue[job_pb2.HistoryEvent | Exception | None] = asyncio.Queue(maxsize=256)
    pump = asyncio.create_task(_pump(client, uuid, after, queue), name=f"ui-watch-{uuid}")
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
                continue  # our WATCH_S deadline, or the server's: not a failure, end quietly (None follows)
            if isinstance(item, client_errors.PipelineJobsError):
                reason = item.reason or item.code.name
                yield message("failure", {"reason": reason, "message": item.message})
                continue
            if isinstance(item, Exception):
                raise item
            yield entry_message(item)
    finally:
        # The browser left (Starlette cancels us) or the watch ended: stop the gRPC stream too.
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
