"""The event feed's collections: ``feed`` (the entries, by position) and ``feed_meta`` (its epoch, the
retention horizon and the relay's lease), and the reads of ``job_events`` the relay makes (ADR 015).

A feed document's ``_id`` is its history entry's uuid and ``p`` its position (unique index). Positions
are taken by inserting at the head + 1, in order, one after the other, and the head (``feed_meta``) is
moved only after them: a position exists only once every smaller one is visible, so a reader that read
the head may read everything up to it and never find a smaller position later. Two feeders at once (the
relay and a CancelJob, or a relay whose lease ran out) cannot take one position twice (``p``) nor feed
one history entry twice (``_id``): the loser's insert fails and it reads again.

Every read here is an equality or an ascending range on an index: on the embedded database a
descending sort, an ``$or`` or a range on ``_id`` reads the whole collection (measured: 0.4 ms against
120-350 ms at 20,000 documents), and the feed grows with every event.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, ParamSpec, TypeVar

import pymongo
from pymongo import ASCENDING, IndexModel, WriteConcern
from pymongo.errors import (
    BulkWriteError,
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    PyMongoError,
    WTimeoutError,
)
from pymongo.read_concern import ReadConcern

from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.feed import CANCELLED, EVENT, FeedEntry, FeedFilter

from .database import Database, Document, translate_errors
from .history_stream import HistoryStream, Point

FEED, FEED_META = "feed", "feed_meta"
# On the job_events documents a database without change streams holds, until fed (storage/documents.py).
PENDING = "feed_pending"
_EPOCH, _HORIZON, _HEAD, _LEASE = "epoch", "horizon", "head", "relay"
MAJORITY = ReadConcern("majority")
MARK_TIMEOUT_S = 0.5
OP_TIMEOUT_S = 1.0
RECOVERY_STEP = 64  # entries of a job read at once by a recovery, looking back for the last one fed
log = logging.getLogger("pipelinejobs.feed")


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _point_fields(point: Point) -> Document:
    return {"resume": point.token, "resume_at": point.at}


@dataclass(frozen=True)
class JobFacts:
    """What the relay needs of a job record: whether it covers an entry, and what to copy onto it."""

    seq: int
    state: str
    cancelled: bool
    pipeline_uuid: str
    links: dict[str, list[str]]


@dataclass(frozen=True)
class Window:
    entries: list[FeedEntry]
    next_position: int  # resume after this position
    caught_up: bool  # next_position is the head: nothing more now
    horizon: int = 0  # as read before the entries


P = ParamSpec("P")
R = TypeVar("R")


def bounded(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """At most ``OP_TIMEOUT_S`` for everything the call sends the database. On the embedded database a
    read now and then got no answer until the socket timeout (10 s) under load, though the database
    answered others at once: the relay and the watches give up sooner and ask again (a new request
    went through at once every time it was tried), rather than stand still for 10 s."""

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with pymongo.timeout(OP_TIMEOUT_S):
            return await function(*args, **kwargs)

    return wrapper


class PositionTaken(Exception):
    """Another feeder took a position or fed an entry meanwhile: read again and retry."""


def entry_to_document(entry: FeedEntry) -> Document:
    return {
        "_id": entry.uuid,
        "p": entry.position,
        "k": entry.kind,
        "job_uuid": entry.job_uuid,
        "pipeline_uuid": entry.pipeline_uuid,
        "links": entry.links,
        "seq": entry.seq,
        "name": entry.name,
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "timestamp": entry.timestamp,
        "data_json": canonical_json(entry.data),
        "source": entry.source,
        "hash": entry.hash,
        "fed_at": entry.fed_at,
    }


def entry_from_document(document: Document, *, with_data: bool = True) -> FeedEntry:
    data = json.loads(document.get("data_json", "{}")) if with_data else {}
    return FeedEntry(
        position=int(document["p"]),
        kind=document.get("k", EVENT),
        uuid=document["_id"],
        job_uuid=document.get("job_uuid", ""),
        pipeline_uuid=document.get("pipeline_uuid", ""),
        links={kind: list(values) for kind, values in document.get("links", {}).items()},
        seq=int(document.get("seq", 0)),
        name=document.get("name", ""),
        from_state=document.get("from_state", ""),
        to_state=document.get("to_state", ""),
        timestamp=_utc(document["timestamp"]),
        data=data if isinstance(data, dict) else {},
        source=document.get("source", ""),
        hash=document.get("hash", ""),
        fed_at=_utc(document["fed_at"]),
    )


def filter_query(feed_filter: FeedFilter) -> Document:
    """The filter as a query on the entries' own fields (copied onto them when they were fed)."""
    query: Document = {}
    if feed_filter.pipeline_uuids:
        query["pipeline_uuid"] = {"$in": list(feed_filter.pipeline_uuids)}
    if feed_filter.job_uuids:
        query["job_uuid"] = {"$in": list(feed_filter.job_uuids)}
    for kind, values in feed_filter.links.items():
        if values:
            query[f"links.{kind}"] = {"$in": list(values)}
    if feed_filter.about_events:
        happened: Document = {"k": EVENT}
        if feed_filter.events:
            happened["name"] = {"$in": list(feed_filter.events)}
        if feed_filter.to_states:
            happened["to_state"] = {"$in": list(feed_filter.to_states)}
        if feed_filter.sources:
            happened["source"] = {"$in": list(feed_filter.sources)}
        if feed_filter.include_cancelled:
            query["$or"] = [happened, {"k": CANCELLED}]
        else:
            query.update(happened)
    return query


class FeedStore:
    def __init__(self, database: Database, *, majority_reads: bool = False) -> None:
        # Majority reads (``majority_reads``, for a replica set): what the relay copies and what readers see
        # was written to a majority and cannot be rolled back by a failover (a position read and then
        # lost would be taken again by another entry). Off by default: on the embedded database (one
        # node, journaled writes) a majority read lags behind writes that are already durable, and was
        # seen to hide a position for seconds while the unique index already held it.
        concern = MAJORITY if majority_reads else ReadConcern()
        self._feed = database.database.get_collection(FEED, read_concern=concern)
        self._meta = database.database.get_collection(FEED_META, read_concern=concern)
        self._events = database.collections.job_events.with_options(read_concern=concern)
        self._jobs = database.collections.jobs.with_options(read_concern=concern)
        # A mark lost in a crash only costs the next round a look at the feed (mark_fed): no journal wait.
        self._marks = database.collections.job_events.with_options(write_concern=WriteConcern(w=1))
        self._database = database
        self._epoch: str | None = None

    @translate_errors
    async def ensure(self) -> None:
        """The indexes, and the feed's epoch (made once per database: a reset database has a new one)."""
        await self._feed.create_indexes(
            [
                IndexModel([("p", ASCENDING)], unique=True, name="position"),
            ]
        )
        # Only entries not fed yet are in it: the relay's one query stays small however long the log.
        await self._events.create_indexes(
            [
                IndexModel(
                    [(PENDING, ASCENDING), ("job_uuid", ASCENDING), ("seq", ASCENDING)],
                    name=PENDING,
                    partialFilterExpression={PENDING: True},
                )
            ]
        )
        await self.epoch()
        if await self.follows_stream():
            await self._start_resume_point()

    async def _start_resume_point(self) -> None:
        """A feed without a resume point gets one now, before this process writes anything: the relay
        then follows the history from before every entry written since (a relay that opened the stream
        only at its first round missed the entries written before it)."""
        if await self.resume_point() is not None:
            return
        stream = self.history_stream()
        await stream.open(None)
        await stream.close()
        assert stream.token is not None, "a change stream always has a starting point"
        query = {"_id": _HEAD, "resume": {"$exists": False}}
        with contextlib.suppress(DuplicateKeyError):  # another replica started at the same time
            await self._meta.update_one(query, {"$set": _point_fields(stream.point)}, upsert=True)

    async def follows_stream(self) -> bool:
        """Whether the relay follows the history's change stream (or, without one, the writers' marks)."""
        return await self._database.has_change_streams()

    @translate_errors
    async def epoch(self) -> str:
        if self._epoch is None:
            with contextlib.suppress(DuplicateKeyError):
                await self._meta.insert_one({"_id": _EPOCH, "epoch": secrets.token_hex(8)})
            document = await self._meta.find_one({"_id": _EPOCH})
            self._epoch = str((document or {})["epoch"])
        return self._epoch

    @translate_errors
    @bounded
    async def head(self) -> int:
        """The newest position whose entries, and all before it, are visible (0 for a new feed)."""
        document = await self._meta.find_one({"_id": _HEAD})
        return int((document or {}).get("p", 0))

    @translate_errors
    @bounded
    async def repair_head(self) -> int:
        """The head, caught up with positions a feeder took but did not record (it died, or its write's
        answer was lost, in between)."""
        return await self._true_head()

    async def _true_head(self, known: int | None = None) -> int:
        """The head (``known``, or read), caught up with positions taken after it: by another feeder, or
        by one that died (or lost its write's answer) before it recorded them."""
        head = await self.head() if known is None else known
        cursor = self._feed.find({"p": {"$gt": head}}, {"p": 1}).sort("p", ASCENDING)
        taken = [int(document["p"]) async for document in cursor]
        # Dense: a position is taken only after the one before it, so the run after the head is unbroken.
        if taken and taken[-1] > head:
            await self._advance_head(taken[-1])
            return taken[-1]
        return head

    async def _advance_head(self, position: int, resume: Point | None = None) -> None:
        update: Document = {"$max": {"p": position}}
        if resume is not None:
            update["$set"] = _point_fields(resume)  # in the same write: no second write per round
        await self._meta.update_one({"_id": _HEAD}, update, upsert=True)

    @translate_errors
    @bounded
    async def resume_point(self) -> Point | None:
        """Where the relay resumes the history's stream: every entry before it was fed."""
        document = await self._meta.find_one({"_id": _HEAD}, {"resume": 1, "resume_at": 1}) or {}
        token, at = document.get("resume"), document.get("resume_at")
        if not token:
            return None
        return Point(dict(token), _utc(at) if isinstance(at, datetime) else datetime.min.replace(tzinfo=UTC))

    @translate_errors
    @bounded
    async def save_resume_point(self, point: Point) -> None:
        """The resume point moved with nothing fed (no entries, or only ones that are never fed)."""
        await self._meta.update_one({"_id": _HEAD}, {"$set": _point_fields(point)}, upsert=True)

    def history_stream(self) -> HistoryStream:
        return HistoryStream(self._events)

    @translate_errors
    @bounded
    async def bounds(self) -> tuple[int, int]:
        """The head and the horizon, in one read."""
        found = {
            document["_id"]: document
            async for document in self._meta.find({"_id": {"$in": [_HEAD, _HORIZON]}})
        }
        return int(found.get(_HEAD, {}).get("p", 0)), int(found.get(_HORIZON, {}).get("through", 0))

    @translate_errors
    @bounded
    async def horizon(self) -> int:
        """Positions up to this one were deleted by the retention: a cursor before it has expired."""
        document = await self._meta.find_one({"_id": _HORIZON})
        return int((document or {}).get("through", 0))

    @translate_errors
    @bounded
    async def window(
        self, after: int, feed_filter: FeedFilter, limit: int, *, span: int, end: int | None, with_data: bool
    ) -> Window:
        """Up to ``limit`` matching entries after ``after``, looking at no more than ``span`` positions
        and none past ``end``. The head is read first: every position up to it is visible (see above),
        so the window never passes a position that may still be taken."""
        head, horizon = await self.bounds()
        upto = min(head, after + span, end if end is not None else head)
        if upto <= after:
            return Window([], after, caught_up=after >= head, horizon=horizon)
        query = {"p": {"$gt": after, "$lte": upto}, **filter_query(feed_filter)}
        projection = None if with_data else {"data_json": 0}
        cursor = self._feed.find(query, projection).sort("p", ASCENDING).limit(limit)
        entries = [entry_from_document(document, with_data=with_data) async for document in cursor]
        if len(entries) == limit:
            return Window(entries, entries[-1].position, entries[-1].position >= head, horizon)
        return Window(entries, upto, upto >= head, horizon)

    # -- feeding --------------------------------------------------------------------------------------

    @translate_errors
    @bounded
    async def pending(self, limit: int) -> list[Document]:
        """History entries not fed yet, by job and seq."""
        cursor = self._events.find({PENDING: True}).sort([("job_uuid", ASCENDING), ("seq", ASCENDING)])
        return [document async for document in cursor.limit(limit)]

    @translate_errors
    @bounded
    async def still_pending(self, entries: Sequence[tuple[str, int]]) -> set[str]:
        """Of these (job, seq) pairs, the jobs whose entry at that seq is not fed yet.

        One read of the pending entries of those jobs (the partial index), not an ``$or`` of the pairs."""
        if not entries:
            return set()
        wanted = set(entries)
        query = {PENDING: True, "job_uuid": {"$in": sorted({job for job, _ in entries})}}
        cursor = self._events.find(query, {"job_uuid": 1, "seq": 1})
        return {
            document["job_uuid"]
            async for document in cursor
            if (document["job_uuid"], document["seq"]) in wanted
        }

    @translate_errors
    async def jobs_updated_since(self, since: datetime) -> list[tuple[str, int]]:
        """Every job whose record was advanced at ``since`` or later, with its seq. A scan of the records
        (they have no index on the time): only a recovery asks it (service/feed_finding.py)."""
        cursor = self._jobs.find({"updated_at": {"$gte": since}}, {"seq": 1})
        return [(document["_id"], int(document.get("seq", 0))) async for document in cursor]

    @translate_errors
    async def unfed_entries(self, job_uuid: str, seq: int, since: datetime) -> list[Document]:
        """The job's entries after the last one of it in the feed, by seq, looking back from ``seq``
        (and including any after it, in flight). An entry written before ``since`` ends the look: it
        was fed before the point the recovery starts from, though the retention may have deleted it."""
        unfed: list[Document] = []
        high: int | None = None
        while high is None or high > 0:
            low = max((seq if high is None else high) - RECOVERY_STEP, 0)
            span: Document = {"$gt": low} if high is None else {"$gt": low, "$lte": high}
            cursor = self._events.find({"job_uuid": job_uuid, "seq": span}).sort("seq", ASCENDING)
            chunk = [document async for document in cursor]
            fed = await self.fed([document["_id"] for document in chunk])
            for index in range(len(chunk) - 1, -1, -1):
                if chunk[index]["_id"] in fed or _utc(chunk[index]["timestamp"]) < since:
                    return chunk[index + 1 :] + unfed
            unfed, high = chunk + unfed, low
        return unfed

    @translate_errors
    @bounded
    async def entries_of(self, job_uuid: str) -> list[Document]:
        """A job's whole history, by seq (a cancelled job's: it never ran, so it is short)."""
        cursor = self._events.find({"job_uuid": job_uuid}).sort("seq", ASCENDING)
        return [document async for document in cursor]

    @translate_errors
    @bounded
    async def job_facts(self, job_uuids: Sequence[str]) -> dict[str, JobFacts]:
        projection = {"seq": 1, "state": 1, "cancelled": 1, "pipeline_uuid": 1, "links": 1}
        cursor = self._jobs.find({"_id": {"$in": list(job_uuids)}}, projection)
        return {
            document["_id"]: JobFacts(
                seq=int(document.get("seq", 0)),
                state=document.get("state", ""),
                cancelled=bool(document.get("cancelled", False)),
                pipeline_uuid=document.get("pipeline_uuid", ""),
                links={kind: list(values) for kind, values in document.get("links", {}).items()},
            )
            async for document in cursor
        }

    @translate_errors
    @bounded
    async def fed(self, uuids: Sequence[str]) -> set[str]:
        """Which of these entry uuids are in the feed already."""
        cursor = self._feed.find({"_id": {"$in": list(uuids)}}, {"_id": 1})
        return {document["_id"] async for document in cursor}

    @translate_errors
    @bounded
    async def append(
        self,
        entries: Sequence[FeedEntry],
        *,
        known_head: int | None = None,
        trusted: bool = False,
        resume: Point | None = None,
    ) -> list[FeedEntry]:
        """Feed ``entries`` in this order at the next positions; the entries as fed (with positions).
        ``resume``, the history stream's new resume point, is stored with the head.

        Raises ``PositionTaken`` when another feeder got in between: some of ``entries`` may have been
        fed then, which the caller's next read of ``fed`` tells."""
        head = known_head if trusted and known_head is not None else await self._true_head(known_head)
        placed = [replace(entry, position=head + offset) for offset, entry in enumerate(entries, 1)]
        try:
            # Ordered: a failed insert stops the rest, so positions are taken in order and never skipped.
            await self._feed.insert_many([entry_to_document(entry) for entry in placed], ordered=True)
        except (BulkWriteError, DuplicateKeyError) as error:
            raise PositionTaken from error
        await self._advance_head(placed[-1].position, resume)  # only now may readers read up to them
        return placed

    @translate_errors
    async def mark_fed(self, uuids: Sequence[str]) -> None:
        """Clear the marks of fed entries. Only saves work: an entry fed but still marked is found in the
        feed by the next round (``fed``) and not fed again. So the clearing is bounded by MARK_TIMEOUT_S
        and a mark left behind is not an error: on the embedded database this update, racing the
        writers' inserts into the same index, was seen to get no answer until the socket timeout (10 s),
        stalling the whole feed meanwhile."""
        if not uuids:
            return
        try:
            with pymongo.timeout(MARK_TIMEOUT_S):
                await self._marks.update_many({"_id": {"$in": list(uuids)}}, {"$unset": {PENDING: ""}})
        except PyMongoError as error:
            if not isinstance(error, (ExecutionTimeout, NetworkTimeout, WTimeoutError)) and not error.timeout:
                raise
            log.info("feed: clearing %d marks timed out; the next round does it", len(uuids))

    # -- retention and the lease ----------------------------------------------------------------------

    @translate_errors
    async def prune(self, before: datetime) -> int:
        """Delete the entries fed before ``before``; the new horizon. The horizon moves first, so that a
        reader never reads a hole as "nothing happened": its cursor has expired instead."""
        horizon, head = await self.horizon(), await self.head()
        # Entries are fed in time order: the first one still young ends the run of expired ones.
        young = await self._feed.find_one(
            {"p": {"$gt": horizon, "$lte": head}, "fed_at": {"$gte": before}},
            {"p": 1},
            sort=[("p", ASCENDING)],
        )
        through = head if young is None else int(young["p"]) - 1
        if through <= horizon:
            return horizon
        await self._meta.update_one({"_id": _HORIZON}, {"$max": {"through": through}}, upsert=True)
        await self._feed.delete_many({"p": {"$lte": through}})
        return through

    @translate_errors
    @bounded
    async def hold_lease(self, holder: str, now: datetime, until: datetime) -> bool:
        """Take or renew the relay's lease for ``holder`` until ``until``; False while another holds it."""
        query: dict[str, Any] = {"_id": _LEASE, "$or": [{"holder": holder}, {"until": {"$lt": now}}]}
        result = await self._meta.update_one(query, {"$set": {"holder": holder, "until": until}})
        if result.matched_count == 1:
            return True
        try:
            await self._meta.insert_one({"_id": _LEASE, "holder": holder, "until": until})
        except DuplicateKeyError:
            return False
        return True

    @translate_errors
    async def release_lease(self, holder: str) -> None:
        await self._meta.delete_one({"_id": _LEASE, "holder": holder})
