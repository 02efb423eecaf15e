"""Caps on open watches: so many per API key, so many in the whole server process (ADR 009).

Every live feed takes a slot for as long as its stream is open (``with limits.slot(principal):`` around
the stream, today WatchJob, later WatchEvents: they share the caps) and gives it back however the stream
ends: finished, failed, cancelled by the caller, or ended by the server. A watch past either cap is
refused at once, before it costs a database read, with RESOURCE_EXHAUSTED and a reason naming the cap;
nothing queues for a slot, since a watch that waited would hold its call open without serving it.

Watches need an API key (WatchJob: a client key), so every one counts against a key. Keys are told
apart by the principal's label, the short digest the server logs them by.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from pipelinejobs_server.domain.errors import TooManyWatchesForKey, TooManyWatchesOnServer

from .credentials import Principal


class WatchLimits:
    def __init__(self, *, per_key: int, total: int) -> None:
        if per_key < 1 or total < 1:
            raise ValueError("watch limits must be at least 1")
        self.per_key = per_key
        self.total = total
        self._open: Counter[str] = Counter()

    def open(self, principal: Principal | None = None) -> int:
        """How many watches are open: of ``principal``'s key, or of everyone."""
        return self._open[principal.label] if principal is not None else self._open.total()

    @contextlib.contextmanager
    def slot(self, principal: Principal) -> Iterator[None]:
        """Hold one slot for the ``with`` block; raise ``TooManyWatches…`` when there is none.

        Synchronous on purpose: the check and the count have no await between them, so two watches
        opened at once on the event loop cannot both take the last slot.
        """
        if self._open[principal.label] >= self.per_key:
            raise TooManyWatchesForKey(
                f"this API key has {self.per_key} watches open, the most it may; end one first",
                limit=self.per_key,
            )
        if self._open.total() >= self.total:
            raise TooManyWatchesOnServer(
                f"the server has {self.total} watches open, the most it takes; retry later or elsewhere",
                limit=self.total,
            )
        self._open[principal.label] += 1
        try:
            yield
        finally:
            self._open[principal.label] -= 1
            if not self._open[principal.label]:
                del self._open[principal.label]
