"""WatchJob: the history after a seq, then each new entry, until the caller leaves or the job settles.

Entries are always read from the log in seq order (``entries_after``), so the stream has no gaps and no
repeats however notifications arrive; reconnecting with the last seq received continues exactly there.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.domain.records import RecordedEntry
from pipelinejobs_server.storage.jobs import JobStore
from pipelinejobs_server.storage.notifications import HistoryNotifier

from . import validation
from .credentials import Principal, Role, require
from .settling import RecordSettler

BATCH = 500


class JobWatcher:
    def __init__(
        self, store: JobStore, settler: RecordSettler, notifier: HistoryNotifier, *, poll_s: float = 1.0
    ) -> None:
        self._store = store
        self._settler = settler
        self._notifier = notifier
        self._poll_s = poll_s
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every watch at its next step: for a graceful shutdown."""
        self._closing.set()

    async def watch(
        self, principal: Principal | None, identity: str, after_seq: int, until_states: tuple[str, ...]
    ) -> AsyncIterator[RecordedEntry]:
        require(principal, Role.CLIENT)
        validation.uuid_field(identity, "uuid")
        if after_seq < 0:
            raise InvalidArgument("after_seq must not be negative", field="after_seq")
        for state in until_states:
            if not fsm.is_state(state):
                raise InvalidArgument(f"unknown state {state!r}", field="until_states")
        job = await self._settler.settled(identity)  # NOT_FOUND before the stream starts
        if until_states and job.state in until_states and job.seq <= after_seq:
            return  # already settled and the caller has seen everything
        signal = self._notifier.subscribe(identity)
        try:
            seq = after_seq
            while not self._closing.is_set():
                signal.clear()  # before reading: an insert after the read sets it again
                page = await self._store.entries_after(identity, seq, BATCH)
                for recorded in page:
                    yield recorded
                    seq = recorded.entry.seq
                if len(page) == BATCH:
                    continue  # more backlog: the job has not been caught up with yet
                if page and page[-1].entry.to_state in until_states:
                    return  # caught up, and the job is now in a state the caller waits for
                if not page:
                    await self._settler.load(identity)  # a cancelled job ends its watches with NOT_FOUND
                await self._wait(signal)
        finally:
            self._notifier.unsubscribe(identity, signal)

    async def _wait(self, signal: asyncio.Event) -> None:
        # The timeout is the polling fallback: it bounds the delay when no notification comes.
        timeout = self._poll_s if self._notifier.streaming else min(self._poll_s, 0.25)
        closing = asyncio.ensure_future(self._closing.wait())
        woken = asyncio.ensure_future(signal.wait())
        try:
            await asyncio.wait({closing, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (closing, woken):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
