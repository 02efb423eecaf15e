"""Wake-ups for this process's WatchEvents streams when the feed grows, fed by any replica.

One task per process reads the feed's head every ``poll_s`` while anyone watches, and wakes every watch
when it moved; the relay of this process wakes them at once after it fed (``poke``). A wake-up only
says "look again": each watch reads the feed itself after its own cursor, so a lost, late or repeated
wake-up delays an entry and never loses or repeats one. The cost of idle watches does not grow with
their number: one indexed read per ``poll_s`` for the whole process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pipelinejobs_server.domain.errors import PipelineJobsError
from pipelinejobs_server.storage.feed import FeedStore

log = logging.getLogger("pipelinejobs.feed")


class FeedTail:
    def __init__(self, store: FeedStore, *, poll_s: float) -> None:
        self._store = store
        self._poll_s = poll_s
        self._waiters: set[asyncio.Event] = set()
        self._head = -1
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def subscribe(self) -> asyncio.Event:
        woken = asyncio.Event()
        self._waiters.add(woken)
        if not self._stopping.is_set() and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._follow(), name="feed-tail")
        return woken

    def unsubscribe(self, woken: asyncio.Event) -> None:
        self._waiters.discard(woken)

    def poke(self) -> None:
        """The feed grew (this process fed it): wake the watches now rather than at the next poll."""
        self._wake()

    def _wake(self) -> None:
        for woken in self._waiters:
            woken.set()

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def stop(self) -> None:
        self._stopping.set()
        self._wake()

    async def _follow(self) -> None:
        # The last check of _waiters and the return have no await between them: a subscribe racing the
        # end finds this task done and starts another.
        while self._waiters and not self._stopping.is_set():
            try:
                head = await self._store.head()
            except PipelineJobsError as error:
                log.debug("feed tail: %s", error.message)
                head = self._head
            if head != self._head:
                self._head = head
                self._wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._poll_s)
