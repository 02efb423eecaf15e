"""The history's change stream, as the feed's relay follows it (ADR 015, amendments 3 and 4).

The relay learns of new history entries from the database's own log of its writes instead of a mark on
each entry: a mark had to be cleared once the entry was fed, and that rewrite of every history document
(with all its index entries) was most of what the feed cost the write path (docs/performance.md §14.6).
The stream hands out inserts and deletes in the order the database applied them, each with a resume
token; a relay that stops resumes after the last token it stored, so nothing written meanwhile is missed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.asynchronous.change_stream import AsyncChangeStream
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure

from .database import Document

log = logging.getLogger("pipelinejobs.feed")

AWAIT_MS = 10  # an empty read of the stream waits this long for a write before it answers "nothing"
# The database no longer holds the stream's history after the token (its log rolled over).
HISTORY_LOST = frozenset({280, 286})
_WATCHED = [{"$match": {"operationType": {"$in": ["insert", "delete"]}}}]

Token = dict[str, Any]


@dataclass(frozen=True)
class Point:
    """A place in the stream (``token``: resume after it; None, from the stream's start) and a time no
    later than any change after it (``at``, the database's clock): where a recovery starts looking when
    the database no longer holds the stream after ``token`` (service/feed_finding.py)."""

    token: Token | None
    at: datetime


@dataclass(frozen=True)
class Change:
    """An entry inserted (``document``) or deleted (``document`` is None) and the point just before it."""

    uuid: str
    document: Document | None
    before: Point


def _reason(error: OperationFailure) -> str:
    return f"{(error.details or {}).get('errmsg', error)} (code {error.code})"


def _wall_time(change: Document, otherwise: datetime) -> datetime:
    """When the database applied the change (``otherwise`` from a server that does not say)."""
    happened = change.get("wallTime")
    if not isinstance(happened, datetime):
        return otherwise
    return happened if happened.tzinfo else happened.replace(tzinfo=UTC)


class HistoryLost(Exception):
    """The stream cannot resume after the token: what was written since must be found another way."""


class HistoryStream:
    def __init__(self, events: AsyncCollection[Document]) -> None:
        self._events = events
        self._stream: AsyncChangeStream[Document] | None = None
        self.token: Token | None = None  # the newest change read (resume after it)
        self.at = datetime.now(UTC)  # ... and no later than the next change

    async def open(self, after: Token | None) -> None:
        """Follow the history after ``after`` (from now when None)."""
        await self.close()
        try:
            self._stream = await self._events.watch(_WATCHED, resume_after=after, max_await_time_ms=AWAIT_MS)
        except OperationFailure as error:
            if error.code in HISTORY_LOST:
                raise HistoryLost(_reason(error)) from error
            raise
        started = self._stream.resume_token
        self.token = after if after is not None else None if started is None else dict(started)
        self.at = datetime.now(UTC)

    @property
    def point(self) -> Point:
        """Where the stream stands: resume here and nothing after what was read is missed."""
        return Point(self.token, self.at)

    @property
    def opened(self) -> bool:
        return self._stream is not None

    async def read(self, limit: int) -> list[Change]:
        """Up to ``limit`` changes that are there now (an empty read waits ``AWAIT_MS`` at most)."""
        assert self._stream is not None, "open the stream first"
        changes: list[Change] = []
        while len(changes) < limit:
            try:
                change = await self._stream.try_next()
            except OperationFailure as error:
                if error.code in HISTORY_LOST:
                    raise HistoryLost(_reason(error)) from error
                raise
            if change is None:
                # Past every change there is: the stream's own point moves on with the database's other
                # writes (the lease's, at least), so a point stored now stays inside the database's log.
                moved = self._stream.resume_token
                if moved is not None:
                    self.token, self.at = dict(moved), datetime.now(UTC)
                break
            before = Point(self.token, _wall_time(change, self.at))
            self.token, self.at = dict(change["_id"]), before.at
            uuid = str(change["documentKey"]["_id"])
            document = change.get("fullDocument") if change["operationType"] == "insert" else None
            changes.append(Change(uuid, document, before))
        return changes

    async def close(self) -> None:
        if self._stream is not None:
            stream, self._stream = self._stream, None
            try:
                await stream.close()
            except Exception:  # a stream that cannot even close is dropped all the same
                log.debug("feed: closing the history stream failed", exc_info=True)
