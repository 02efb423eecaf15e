"""WatchJob: the history after a seq, then each new entry, until the job settles or the watch ends.

Entries are always read from the history in seq order (``entries_after``), so the stream has no gaps
and no repeats however notifications arrive; reconnecting with the last seq received continues exactly
there. An idle watch makes no database query: it waits to be woken by the process's notifier
(storage/notifications.py), which follows the change stream and polls once for all watches.

A watch ends with OK only when the job is in a state the caller waits for. Otherwise the caller leaves,
or the server ends it with ``WatchResume`` (UNAVAILABLE, reason WATCH_RESUME, metadata ``after_seq``):
after ``max_duration_s``, or when the server stops. Each open watch holds a slot of ``WatchLimits``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import InvalidArgument, WatchResume
from pipelinejobs_server.domain.records import RecordedEntry
from pipelinejobs_server.storage.jobs import JobStore
from pipelinejobs_server.storage.notifications import HistoryNotifier, Subscription

from . import validation
from .credentials import Principal, Role, require
from .settling import RecordSettler
from .watch_limits import WatchLimits

BATCH = 500


class JobWatcher:
    def __init__(
        self,
        store: JobStore,
        settler: RecordSettler,
        notifier: HistoryNotifier,
        limits: WatchLimits,
        *,
        max_duration_s: float,
    ) -> None:
        self._store = store
        self._settler = settler
        self._notifier = notifier
        self._limits = limits
        self._max_duration_s = max_duration_s
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every watch at its next step with ``WatchResume``: for a graceful shutdown."""
        self._closing.set()

    async def watch(
        self, principal: Principal | None, identity: str, after_seq: int, until_states: tuple[str, ...]
    ) -> AsyncIterator[RecordedEntry]:
        caller = require(principal, Role.CLIENT)
        validation.uuid_field(identity, "uuid")
        if after_seq < 0:
            raise InvalidArgument("after_seq must not be negative", field="after_seq")
        for state in until_states:
            if not fsm.is_state(state):
                raise InvalidArgument(f"unknown state {state!r}", field="until_states")
        with self._limits.slot(caller):  # refused before the watch costs a database read
            job = await self._settler.settled(identity)  # NOT_FOUND before the stream starts
            if until_states and job.state in until_states and job.seq <= after_seq:
                return  # already settled and the caller has seen everything
            subscription = self._notifier.subscribe(identity, after_seq)
            try:
                async for recorded in self._follow(subscription, until_states):
                    yield recorded
            finally:
                self._notifier.unsubscribe(subscription)

    async def _follow(
        self, subscription: Subscription, until_states: tuple[str, ...]
    ) -> AsyncIterator[RecordedEntry]:
        identity = subscription.job_uuid
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_duration_s
        while True:
            if self._closing.is_set():
                raise WatchResume(subscription.seq, "the server is stopping")
            if loop.time() >= deadline:
                raise WatchResume(subscription.seq, "the watch reached its maximum duration")
            subscription.woken.clear()  # before reading: an insert after the read sets it again
            page = await self._store.entries_after(identity, subscription.seq, BATCH)
            for recorded in page:
                yield recorded
                subscription.seq = recorded.entry.seq
            if len(page) == BATCH:
                continue  # more backlog: the job has not been caught up with yet
            if page and page[-1].entry.to_state in until_states:
                return  # caught up, and the job is now in a state the caller waits for
            if not page:
                await self._settler.load(identity)  # a cancelled job ends its watches with NOT_FOUND
            await self._wait(subscription.woken, deadline - loop.time())

    async def _wait(self, woken: asyncio.Event, timeout_s: float) -> None:
        """Until woken, the server stops, or ``timeout_s`` (the watch's end): no polling of its own."""
        closing = asyncio.ensure_future(self._closing.wait())
        waking = asyncio.ensure_future(woken.wait())
        try:
            await asyncio.wait(
                {closing, waking}, timeout=max(timeout_s, 0.0), return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for task in (closing, waking):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
