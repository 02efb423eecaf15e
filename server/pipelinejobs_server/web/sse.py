"""Server-Sent Events from a gRPC watch: the framing, heartbeats and the end of a stream, shared by the
dashboard's job page (``WatchJob``) and the event feed's streams (``WatchEvents``).

The watch runs in a task of its own that hands its items over a bounded queue, so that the response can
send a comment line whenever the watch has been quiet for ``HEARTBEAT_S`` (proxies keep the connection,
and a vanished browser is noticed). Each stream ends after ``WATCH_S`` (the caller's watch deadline) and
the browser's EventSource reconnects by itself, sending the last id back as ``Last-Event-ID``: the
reconnection is the resume, so no watch outlives its reader by long and none pins one server replica.
A watch the server ends first (``WATCH_RESUME``: its maximum duration, or it is stopping) ends the stream
the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from pipelinejobs_client import errors as client_errors

HEARTBEAT_S = 15.0
WATCH_S = 300.0
RETRY_MS = 2000  # how long the browser waits before reconnecting

T = TypeVar("T")


def message(event: str, data: dict[str, Any], event_id: str | int | None = None) -> str:
    """One SSE message; ``data`` is a single line of JSON, so no field can break the framing."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {event}\ndata: {json.dumps(data, separators=(',', ':'), sort_keys=True)}\n\n"


async def _pump(watch: AsyncIterator[T], queue: asyncio.Queue[T | Exception | None]) -> None:
    # Cancelled (the reader left), it just stops: nobody is waiting for the end marker then.
    try:
        async for item in watch:
            await queue.put(item)
    except Exception as error:  # handed to the reader, which reports or raises it
        await queue.put(error)
    await queue.put(None)


async def stream(watch: AsyncIterator[T], encode: Callable[[T], str], *, name: str) -> AsyncIterator[str]:
    """The SSE body of ``watch``: a retry hint, then each item as ``encode`` frames it, with heartbeats.

    A failure the server reports goes out as a ``failure`` message (its reason and message, nothing of
    the request); anything else raised ends the response with the error.
    """
    queue: asyncio.Queue[T | Exception | None] = asyncio.Queue(maxsize=256)
    pump = asyncio.create_task(_pump(watch, queue), name=name)
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
            yield encode(item)
    finally:
        # The reader left (Starlette cancels us) or the watch ended: stop the gRPC stream too.
        pump.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pump
