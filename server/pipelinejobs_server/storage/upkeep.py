"""What a server finishes after it started serving: the indexes that were missing, and the first count of
a database that had jobs before the counters (ADR 014).

A server on a big database must serve within seconds, and an index build over a million documents takes
the embedded database minutes. So ``Database.ensure_indexes`` builds before serving only what correctness
needs (the uniqueness guards) and what is instant (indexes on empty collections); this task builds the
rest, one at a time, logging each with its time, then measures the listing's extent (storage/extent.py)
and counts the jobs (``Counters.recount``), whose counts say ``exact=false`` until then. A failure is
logged and tried again later: it never stops the server, which answers every call meanwhile (a listing
without its index is slower, not wrong).

Progress is ``status()``, which the health service reports (api/health.py: the ``pipelinejobs.upkeep``
service name turns SERVING when everything is done) and the log repeats.

The task is ended by a flag, like the health check's (api/health.py says why not by cancelling it).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import pymongo

from pipelinejobs_server.domain.errors import DatabaseUnavailable
from pipelinejobs_server.stopping import pause

from .counts import Counters
from .database import Declared, translate_errors
from .extent import Extents

log = logging.getLogger("pipelinejobs.upkeep")

RETRY_S = 5.0
# An index build or the first count at a million jobs takes minutes: longer than the client's socket
# timeout (10 s), which would give up on it and start it again for ever.
LONG_S = 3600.0


@dataclass
class UpkeepStatus:
    pending: list[str] = field(default_factory=list)  # indexes still to build, the first one building
    built: list[str] = field(default_factory=list)
    counted: bool = False
    last_error: str = ""

    @property
    def done(self) -> bool:
        return not self.pending and self.counted

    def as_json(self) -> dict[str, object]:
        return {
            "done": self.done,
            "pending_indexes": list(self.pending),
            "built_indexes": list(self.built),
            "counts_exact": self.counted,
            "last_error": self.last_error,
        }


class Upkeep:
    def __init__(
        self,
        missing: Sequence[Declared],
        counters: Counters,
        extents: Extents,
        now: Callable[[], datetime],
        *,
        on_change: Callable[[UpkeepStatus], Awaitable[None]] | None = None,
    ) -> None:
        self._todo = list(missing)
        self._counters = counters
        self._extents = extents
        self._now = now
        self._on_change = on_change
        self.status = UpkeepStatus(pending=[str(d) for d in missing])
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        if self.status.done:
            return
        self._task = asyncio.create_task(self._run(), name="upkeep")

    def stop(self) -> None:
        self._stopping.set()

    async def _run(self) -> None:
        while not self._stopping.is_set() and not self.status.done:
            try:
                await self._step()
            except DatabaseUnavailable as error:
                self.status.last_error = str(error)
                log.warning("upkeep: %s; trying again in %.0f s", error, RETRY_S)
                await pause(self._stopping, RETRY_S)
        if self.status.done:
            log.info("upkeep done: %d indexes built, counts exact", len(self.status.built))

    async def _step(self) -> None:
        if self._todo:
            declared = self._todo[0]
            await self._build(declared)
            self._todo.pop(0)
            self.status.pending.pop(0)
            self.status.built.append(str(declared))
        elif not self.status.counted:
            started = time.monotonic()
            with pymongo.timeout(LONG_S):
                # The listing's extent too, for a database listed before it was kept: like the count,
                # one read of the whole listing (storage/extent.py), none once it exists.
                await self._extents.measure()
                counted = await self._counters.recount(self._now())
            self.status.counted = True
            if counted:
                log.info("upkeep: jobs counted in %.1f s; counts are exact", time.monotonic() - started)
        self.status.last_error = ""
        if self._on_change is not None:
            await self._on_change(self.status)

    @translate_errors
    async def _build(self, declared: Declared) -> None:
        documents = await declared.collection.estimated_document_count()
        log.info("upkeep: building index %s over %d documents", declared, documents)
        started = time.monotonic()
        with pymongo.timeout(LONG_S):
            await declared.collection.create_indexes([declared.model])
        log.info("upkeep: index %s built in %.1f s", declared, time.monotonic() - started)
