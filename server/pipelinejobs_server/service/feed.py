"""ListEvents and WatchEvents: the feed of every accepted event of every job, after a cursor (ADR 015).

Readers read the feed itself, after their own position, a window at a time (storage/feed.py
``window``): a window never passes the head it read first, so nothing can later appear behind a
cursor that was handed out. A watch waits between reads to be woken by the process's ``FeedTail``
and makes no query of its own while idle; it sends a bookmark (the position it has considered up to)
every ``bookmark_s`` even when nothing matched, so that a consumer of a rare filter can resume from a
recent cursor. Watches hold a slot of the same ``WatchLimits`` as WatchJob and end with
``WatchResume`` (metadata ``after_cursor``) after the same maximum duration, or when the server
stops (ADR 009).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.clock import Clock
from pipelinejobs_server.domain.errors import (
    CursorExpired,
    CursorUnknown,
    DatabaseUnavailable,
    InvalidArgument,
    WatchResume,
)
from pipelinejobs_server.domain.feed import Cursor, FeedEntry, FeedFilter, decode_cursor
from pipelinejobs_server.settings import Limits
from pipelinejobs_server.storage.feed import FeedStore, Window

from . import paging, validation
from .credentials import Principal, Role, require
from .events import SOURCES
from .feed_tail import FeedTail
from .watch_limits import WatchLimits

SPAN = 10_000  # positions one read looks at, at most: a rare filter costs bounded work per call
LINK_KINDS = ("lab", "experiment", "sample")
MAX_UUIDS = 100
WATCH_BATCH = 500  # entries a watch reads at a time while it catches up
RETRY_S = 0.25  # after a read that failed, the watch reads again this soon


@dataclass(frozen=True)
class Listed:
    entries: list[tuple[FeedEntry, str]]  # each with its cursor
    next_cursor: str
    caught_up: bool


@dataclass(frozen=True)
class Bookmark:
    cursor: str
    time: datetime


def checked_filter(feed_filter: FeedFilter) -> FeedFilter:
    """The filter, or INVALID_ARGUMENT naming the first field that is wrong."""
    for name, values in (
        ("pipeline_uuids", feed_filter.pipeline_uuids),
        ("job_uuids", feed_filter.job_uuids),
    ):
        if len(values) > MAX_UUIDS:
            raise InvalidArgument(
                f"filter.{name} holds {len(values)} values; at most {MAX_UUIDS}", field=name
            )
        for value in values:
            validation.uuid_field(value, f"filter.{name}")
    for event in feed_filter.events:
        if not fsm.is_event(event):
            raise InvalidArgument(f"filter.events: unknown event {event[:64]!r}", field="filter.events")
    for state in feed_filter.to_states:
        if not fsm.is_state(state):
            raise InvalidArgument(f"filter.to_states: unknown state {state[:64]!r}", field="filter.to_states")
    for source in feed_filter.sources:
        if source not in SOURCES:
            raise InvalidArgument(f"filter.sources: unknown source {source[:64]!r}", field="filter.sources")
    for kind, values in feed_filter.links.items():
        if kind not in LINK_KINDS:
            raise InvalidArgument(f"filter.links: unknown link kind {kind!r}", field="filter.links")
        validation.link_count(values, kind)
        for value in values:
            validation.text(value, f"filter.links.{kind}", required=True, max_length=validation.MAX_TEXT)
    return feed_filter


class EventFeed:
    def __init__(
        self,
        store: FeedStore,
        tail: FeedTail,
        limits: WatchLimits,
        page_limits: Limits,
        clock: Clock,
        *,
        max_duration_s: float,
        bookmark_s: float,
    ) -> None:
        self._store = store
        self._tail = tail
        self._limits = limits
        self._page_limits = page_limits
        self._clock = clock
        self._max_duration_s = max_duration_s
        self._bookmark_s = bookmark_s
        self._closing = asyncio.Event()

    def close(self) -> None:
        """End every watch at its next step with ``WatchResume``: for a graceful shutdown."""
        self._closing.set()

    async def _cursor(self, position: int) -> str:
        return Cursor(await self._store.epoch(), position).encode()

    async def _position(self, value: str, name: str) -> int:
        """Where a cursor points, after every check: ours (epoch), not expired, not ahead of the feed."""
        if not value:
            return await self._store.horizon()
        cursor = decode_cursor(value, name)
        if cursor.epoch != await self._store.epoch():
            raise CursorUnknown(
                f"{name} is a cursor of another installation's feed (or of this database before a reset)",
                field=name,
            )
        await self._not_expired(cursor.position, name)
        if cursor.position > await self._store.head():
            raise CursorUnknown(
                f"{name} is ahead of this feed (a database restored from an older backup?)", field=name
            )
        return cursor.position

    async def _not_expired(self, position: int, name: str) -> None:
        horizon = await self._store.horizon()
        if position < horizon:
            raise CursorExpired(
                f"{name} is older than the feed's retention: the entries after it were deleted; "
                "resume from oldest_cursor to read what is left",
                oldest_cursor=await self._cursor(horizon),
            )

    async def _read(
        self, after: int, feed_filter: FeedFilter, limit: int, *, end: int | None, full: bool, name: str
    ) -> Window:
        window = await self._store.window(after, feed_filter, limit, span=SPAN, end=end, with_data=full)
        if window.horizon:
            # Pruned meanwhile? Then the window may have read a hole as "nothing there". (A feed that
            # was never pruned cannot have holes: no second read for it.)
            await self._not_expired(after, name)
        return window

    async def list_events(
        self,
        principal: Principal | None,
        feed_filter: FeedFilter,
        after_cursor: str,
        page_size: int,
        *,
        full: bool,
    ) -> Listed:
        require(principal, Role.CLIENT)
        feed_filter = checked_filter(feed_filter)
        limit = paging.page_size(page_size, self._page_limits)
        after = await self._position(after_cursor, "after_cursor")
        window = await self._read(after, feed_filter, limit, end=None, full=full, name="after_cursor")
        entries = [(entry, await self._cursor(entry.position)) for entry in window.entries]
        return Listed(entries, await self._cursor(window.next_position), window.caught_up)

    async def watch_events(
        self,
        principal: Principal | None,
        feed_filter: FeedFilter,
        *,
        after_cursor: str,
        from_now: bool,
        full: bool,
        end_cursor: str = "",
        end_time: datetime | None = None,
    ) -> AsyncIterator[tuple[FeedEntry, str] | Bookmark]:
        caller = require(principal, Role.CLIENT)
        feed_filter = checked_filter(feed_filter)
        if from_now and after_cursor:
            raise InvalidArgument("give after_cursor or from_now, not both", field="from_now")
        with self._limits.slot(caller):  # refused before the watch costs a database read
            after = (
                await self._store.head() if from_now else await self._position(after_cursor, "after_cursor")
            )
            end = await self._position(end_cursor, "end_cursor") if end_cursor else None
            woken = self._tail.subscribe()
            try:
                if from_now:
                    # Where "now" is, at once: a client that reconnects before any entry came resumes
                    # there, rather than from a later "now" that would skip what came between.
                    yield Bookmark(await self._cursor(after), self._clock.now())
                async for item in self._follow(woken, after, feed_filter, end, end_time, full):
                    yield item
            finally:
                self._tail.unsubscribe(woken)

    async def _follow(
        self,
        woken: asyncio.Event,
        after: int,
        feed_filter: FeedFilter,
        end: int | None,
        end_time: datetime | None,
        full: bool,
    ) -> AsyncIterator[tuple[FeedEntry, str] | Bookmark]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._max_duration_s
        bookmark_at = loop.time() + self._bookmark_s
        while True:
            if self._closing.is_set():
                raise WatchResume.at_cursor(await self._cursor(after), "the server is stopping")
            if loop.time() >= deadline:
                raise WatchResume.at_cursor(
                    await self._cursor(after), "the watch reached its maximum duration"
                )
            woken.clear()  # before reading: a wake-up after the read sets it again
            try:
                window = await self._read(
                    after, feed_filter, WATCH_BATCH, end=end, full=full, name="after_cursor"
                )
            except DatabaseUnavailable:
                # A read that got no answer in time: the watch goes on from where it is, as an idle
                # WatchJob does through an outage, rather than end.
                await self._wait(woken, RETRY_S)
                continue
            for entry in window.entries:
                yield entry, await self._cursor(entry.position)
                after = entry.position
            after = window.next_position
            if end is not None and after >= end:
                return
            if not window.caught_up:
                continue
            if end_time is not None and self._clock.now() >= end_time:
                return
            if loop.time() >= bookmark_at:
                yield Bookmark(await self._cursor(after), self._clock.now())
                bookmark_at = loop.time() + self._bookmark_s
            wait = min(bookmark_at, deadline) - loop.time()
            if end_time is not None:
                wait = min(wait, (end_time - self._clock.now()).total_seconds())
            await self._wait(woken, wait)

    async def _wait(self, woken: asyncio.Event, timeout_s: float) -> None:
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
