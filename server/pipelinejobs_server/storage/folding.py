"""The background task that folds the job counts' pending changes into their counters (storage/counts.py).

Every replica runs one. Two replicas folding the same changes conflict inside their transactions, and the
driver's ``with_transaction`` retries the loser, which then finds them folded. A read never waits for a
fold (it adds the pending changes itself), so the folder's lag costs a read only the documents it sums;
the folder runs often to keep that small, and a pass reads the pending changes in key order, so that
changes whose entries are still in flight (their writer died and no roll-forward came yet) never keep
it from the others.

The task is ended by a flag, like the health check's (api/health.py says why not by cancelling it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime

from pymongo.errors import PyMongoError

from pipelinejobs_server.domain.errors import DatabaseUnavailable
from pipelinejobs_server.stopping import pause

from .counts import Counters

log = logging.getLogger("pipelinejobs.counts")

INTERVAL_S = 0.5
BATCH = 500
RETRY_S = 5.0


class CountFolder:
    def __init__(
        self, counters: Counters, now: Callable[[], datetime], *, interval_s: float = INTERVAL_S
    ) -> None:
        self._counters = counters
        self._now = now
        self._interval_s = interval_s
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def task(self) -> asyncio.Task[None] | None:
        return self._task

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="count-folder")

    def stop(self) -> None:
        self._stopping.set()

    async def fold_all(self) -> int:
        """One pass over every pending change; how many were folded or forgotten."""
        done, after = 0, ""
        while not self._stopping.is_set():
            folded = await self._counters.fold(self._now(), after, BATCH)
            done += folded.folded + folded.forgotten
            if folded.read < BATCH:
                return done
            after = folded.last
        return done

    async def _run(self) -> None:
        while not self._stopping.is_set():
            wait_s = self._interval_s
            try:
                await self.fold_all()
            except (DatabaseUnavailable, PyMongoError) as error:
                # Also a fold that met another replica's for longer than the driver retries it (a replica
                # killed inside one holds its documents for the transaction's lifetime): never the end of
                # folding, which reads do not wait for.
                log.warning("folding the job counts: %s; trying again in %.0f s", error, RETRY_S)
                wait_s = RETRY_S
            await pause(self._stopping, wait_s)
