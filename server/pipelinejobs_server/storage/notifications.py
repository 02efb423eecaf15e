"""Wake-ups for watchers when a job's history grows, from any replica.

One change stream per server process follows inserts into ``job_events`` and wakes the watchers of that
job. A wake-up only says "look again": watchers always read the history itself (``entries_after``), so
a missed, duplicated or reordered notification can delay an entry but never lose or repeat one.

Watchers do not poll. The one safety net is this process's poll (``poll``): one indexed query per
distinct watched job, which wakes only the watchers behind the job's newest entry (or all of them when
the job is gone: a cancelled job's history is deleted, which the stream of inserts does not show). It
runs every ``SAFETY_POLL_S`` while the stream is live, and every ``RETRY_S`` while it is not (a standalone
database has no change streams): then it is how watchers learn of new entries at all.

The stream is open only while someone watches (and ``LINGER_S`` after the last one leaves): on the
embedded database every open change stream costs every write in the database about a millisecond of
the database's CPU, watched or not (docs/performance.md, 4.2).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import PyMongoError

from .database import Document

log = logging.getLogger("pipelinejobs.watch")

RETRY_S = 1.0  # without a live stream: how often to try it again, and to poll meanwhile
SAFETY_POLL_S = 30.0  # with a live stream: how long a missed notification can delay an entry at worst
AWAIT_MS = 100  # how long one read of the stream may wait: how soon the follower sees the stop flag
LINGER_S = 10.0  # keep following this long after the last watcher left: watches come and go in bursts


@dataclass(eq=False)  # compared and hashed by identity: one per watch, kept in sets
class Subscription:
    """One watch of one job. ``woken`` is set when the history may have grown past ``seq``, the last
    seq the watch has read; the watch keeps ``seq`` current, so the safety poll wakes only those behind."""

    job_uuid: str
    seq: int
    woken: asyncio.Event = field(default_factory=asyncio.Event)


class HistoryNotifier:
    def __init__(self, events: AsyncCollection[Document]) -> None:
        self._events = events
        self._waiters: dict[str, set[Subscription]] = defaultdict(set)
        self._task: asyncio.Task[None] | None = None
        self._started = False
        self._stopping = asyncio.Event()
        self.streaming = False  # False: watchers hear of new entries from the poll alone

    def subscribe(self, job_uuid: str, seq: int) -> Subscription:
        """Follow ``job_uuid`` for a watch that has read its history up to ``seq``."""
        subscription = Subscription(job_uuid, seq)
        self._waiters[job_uuid].add(subscription)
        self._follow_if_watched()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        waiters = self._waiters.get(subscription.job_uuid)
        if waiters is not None:
            waiters.discard(subscription)
            if not waiters:
                del self._waiters[subscription.job_uuid]

    def _wake(self, job_uuid: str) -> None:
        for subscription in self._waiters.get(job_uuid, ()):
            subscription.woken.set()

    def _wake_all(self) -> None:
        for waiters in self._waiters.values():
            for subscription in waiters:
                subscription.woken.set()

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
                        "change stream interrupted (%s); polling every %g s until it is back",
                        type(error).__name__,
                        RETRY_S,
                    )
                self.streaming = False
            except Exception:
                # Not the database: a fault of ours. Watchers hear of new entries only from this loop,
                # so it logs and goes on (polling) rather than end and leave them waiting.
                log.exception("change stream follower failed; polling every %g s", RETRY_S)
                self.streaming = False
            await self.poll()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), RETRY_S)
        self.streaming = False

    async def _read(self, stream: AsyncChangeStream[Document]) -> bool:
        """Wake watchers from the stream until it ends or stopping (False), or nobody watched for a while."""
        loop = asyncio.get_running_loop()
        unwatched_since: float | None = None
        next_poll = loop.time() + SAFETY_POLL_S
        while stream.alive and not self._stopping.is_set():
            if loop.time() >= next_poll:
                await self.poll()
                next_poll = loop.time() + SAFETY_POLL_S
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

    async def poll(self) -> None:
        """Wake the watchers that are behind their job's newest entry, or whose job is gone.

        One query per watched job, whatever the number of its watchers: the entries from the furthest
        watcher's seq on, at most two. Any after it, and every watcher of the job is behind; none at
        all (not even its own), and the job was cancelled. A watcher behind another one of the same
        job is behind by definition: the other read those entries from the history.
        """
        for job_uuid in list(self._waiters):
            if self._stopping.is_set():
                return
            waiters = list(self._waiters.get(job_uuid, ()))
            if not waiters:
                continue
            furthest = max(subscription.seq for subscription in waiters)
            try:
                cursor = (
                    self._events.find({"job_uuid": job_uuid, "seq": {"$gte": furthest}}, {"_id": 0, "seq": 1})
                    .sort("seq", ASCENDING)
                    .limit(2)
                )
                found = [document["seq"] async for document in cursor]
            except PyMongoError as error:
                log.debug("safety poll failed (%s); watchers keep waiting", type(error).__name__)
                return
            gone_or_grown = not found or found[-1] > furthest
            for subscription in waiters:
                if gone_or_grown or subscription.seq < furthest:
                    subscription.woken.set()
