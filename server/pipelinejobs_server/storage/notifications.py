"""Wake-ups for watchers when a job's log grows, from any replica.

One change stream per server process follows inserts into ``job_events`` and wakes the watchers of that
job. A wake-up only says "look again": watchers always read the log itself (``entries_after``), so a
missed, duplicated or reordered notification can delay an event but never lose or repeat one. Where
change streams are unavailable the watchers fall back on polling, which keeps the same guarantees.

The stream is open only while someone watches (and ``LINGER_S`` after the last one leaves): on the
embedded database every open change stream costs every write in the database about a millisecond of
the database's CPU, watched or not (docs/performance.md, 4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from .database import Document

log = logging.getLogger("pipelinejobs.watch")

RETRY_S = 1.0
AWAIT_MS = 100  # how long one read of the stream may wait: how soon the follower sees the stop flag
LINGER_S = 10.0  # keep following this long after the last watcher left: watches come and go in bursts


class HistoryNotifier:
    def __init__(self, events: AsyncCollection[Document]) -> None:
        self._events = events
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = asyncio.Event()
        self.streaming = False  # False: watchers rely on polling alone

    def subscribe(self, job_uuid: str) -> asyncio.Event:
        signal = asyncio.Event()
        self._waiters[job_uuid].add(signal)
        self._follow_if_watched()
        return signal

    def unsubscribe(self, job_uuid: str, signal: asyncio.Event) -> None:
        waiters = self._waiters.get(job_uuid)
        if waiters is not None:
            waiters.discard(signal)
            if not waiters:
                del self._waiters[job_uuid]

    def _wake(self, job_uuid: str) -> None:
        for signal in self._waiters.get(job_uuid, ()):
            signal.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for signal in waiters:
                signal.set()

    def start(self) -> None:
        self._started = True
        self._follow_if_watched()

    def _follow_if_watched(self) -> None:
        # Synchronous, like the check that ends _follow: no await between them, so no watcher is missed.
        if not self._started or self._stopping.is_set() or not self._waiters:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._follow(), name="job-events-change-stream")

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The follower, for the server's stop to wait on (with its own deadline)."""
        return self._task

    def stop(self) -> None:
        """Stop following; no new follower starts. Does not wait: ``task`` ends within one short read
        of the stream while the database answers. When it does not, a read lasts up to the client's
        socket timeout (10 s), so the server's stop waits on ``task`` only until its own deadline.

        Never cancelled as the way to end it: a cancellation inside the driver can be lost (see
        api/health.py), and cancelling a read of the stream was seen to hang shutdown now and then."""
        self._stopping.set()
        self._wake_all()

    async def _follow(self) -> None:
        """Follow the stream while anyone watches. The last check of ``_waiters`` and the return have no
        await between them, so a ``subscribe`` racing the end finds this task done and starts another."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"operationType": "insert"}},
            {"$project": {"fullDocument.job_uuid": 1}},
        ]
        while self._waiters and not self._stopping.is_set():
            try:
                # Bounded waits (try_next with max_await_time) rather than ``async for``: cancelling a
                # task blocked inside the driver's read was seen to hang shutdown now and then.
                async with await self._events.watch(pipeline, max_await_time_ms=AWAIT_MS) as stream:
                    self.streaming = True
                    # Anything inserted while the stream was down is found by the watchers' next read.
                    self._wake_all()
                    unwatched = await self._read(stream)
                self.streaming = False
                if unwatched:
                    continue  # closed for want of watchers; one may have come meanwhile: the loop decides
            except PyMongoError as error:
                if self.streaming:
                    log.warning(
                        "change stream interrupted (%s); watchers poll until it is back", type(error).__name__
                    )
                self.streaming = False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RETRY_S)
        self.streaming = False

    async def _read(self, stream: AsyncChangeStream[Document]) -> bool:
        """Wake watchers from the stream until it ends or stopping (False), or nobody watched for a while."""
        loop = asyncio.get_running_loop()
        unwatched_since: float | None = None
        while stream.alive and not self._stopping.is_set():
            if self._waiters:
                unwatched_since = None
            elif unwatched_since is None:
                unwatched_since = loop.time()
            elif loop.time() - unwatched_since > LINGER_S:
                return True
            change = await stream.try_next()
            job_uuid = (change or {}).get("fullDocument", {}).get("job_uuid")
            if isinstance(job_uuid, str):
                self._wake(job_uuid)
        return False
