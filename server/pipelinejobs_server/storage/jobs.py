"""Jobs and their event log.

The write path is log-first (DESIGN section 6.3): an event is inserted into ``job_events`` under the
unique ``(job_uuid, seq)`` index, then the job record is advanced with a compare-and-set on ``seq``.
Two writers can never both take a seq, and a record left behind its log by a crash is rolled forward by
whoever sees it next. Compare-and-set is ``update_one`` with the precondition in the filter, never
``find_one_and_update``, which scans the whole collection on the embedded database (DESIGN section 9).
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import BulkWriteError, DuplicateKeyError

from pipelinejobs_server.domain.history import Entry
from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position
from pipelinejobs_server.domain.records import ADVANCED_FIELDS, JobRecord, RecordedEntry
from pipelinejobs_server.domain.tokens import StoredToken

from . import counts, listed, windows
from .database import DUPLICATE_KEY, Database, Document, duplicate_index, duplicate_index_of, translate_errors
from .documents import (
    as_utc,
    event_from_document,
    event_to_document,
    job_from_document,
    job_to_document,
    token_to_document,
)
from .extent import Extents


def page_range(seq: int, limit: int) -> dict[str, int]:
    """The seqs of a history page of ``limit`` entries after ``seq``: a closed range (``entries_after``)."""
    return {"$gt": seq, "$lte": min(seq + limit, MAX_SEQ)}


MAX_SEQ = 2**63 - 1  # BSON's largest integer: a page after the last possible seq is empty, not an error


class AppendOutcome(enum.Enum):
    APPENDED = "appended"
    SEQ_TAKEN = "seq_taken"  # another writer (or a crashed one) already holds this seq
    KEY_TAKEN = "key_taken"  # this idempotency key was already applied to the job
    SKIPPED = "skipped"  # not written: an earlier entry of the same job in the batch was not appended


@dataclass(frozen=True)
class _Write:
    """A compare-and-set on a record, and the record to list before it, if its listing is due."""

    query: dict[str, Any]
    update: dict[str, Any]
    listing: JobRecord | None
    changes: list[Document]  # what it changes in the counts (storage/counts.py); none for most events


@dataclass(frozen=True)
class Advance:
    """One job's compare-and-set in a batch: ``job`` as read, moved over ``entries``."""

    job: JobRecord
    entries: Sequence[RecordedEntry]
    token: StoredToken | None = None


class TokenOutcome(enum.Enum):
    ADDED = "added"
    FULL = "full"  # the job holds the maximum of live tokens
    GONE = "gone"  # the job does not exist or is being cancelled


class JobStore:
    def __init__(self, database: Database) -> None:
        self._database = database
        self._jobs = database.collections.jobs
        self._events = database.collections.job_events
        self._listing = database.collections.job_listing
        self._extents = Extents(database.collections.job_listing_extent, self._listing)
        # What this process learned of each filter's density: the first slice of its next page.
        self._densities = windows.Densities()
        self._counters = counts.Counters(database)

    @property
    def counters(self) -> counts.Counters:
        return self._counters

    @translate_errors
    async def get(self, job_uuid: str) -> JobRecord | None:
        document = await self._jobs.find_one({"_id": job_uuid})
        return None if document is None else job_from_document(document)

    @translate_errors
    async def get_many(self, job_uuids: Sequence[str]) -> dict[str, JobRecord]:
        """The records of these jobs that exist, by uuid, in one query."""
        if len(job_uuids) == 1:
            found = await self.get(job_uuids[0])
            return {} if found is None else {found.uuid: found}
        # All of them in the first reply, cursor closed (without a limit: 101 documents, then a getMore).
        cursor = self._jobs.find({"_id": {"$in": list(job_uuids)}}).limit(len(job_uuids))
        return {document["_id"]: job_from_document(document) async for document in cursor}

    @translate_errors
    async def page(
        self, job_filter: JobFilter, order: JobOrder, position: Position | None, limit: int
    ) -> list[JobRecord]:
        """Up to ``limit`` jobs after ``position`` in ``order``, found in the listing (ADR 013) a slice of
        the sort key at a time (storage/windows.py, ADR 004).

        Each row is the job's record with the update time its listing holds: the order, the ranges
        and the next page's position are all by that one value (at most ``listed.GRANULARITY`` behind
        the record's own, which GetJob answers).
        """
        reader = windows.PageReader(
            self._listing, self._extents, self._densities, job_filter, order, position
        )
        jobs: list[JobRecord] = []
        while len(jobs) < limit:
            rows = await reader.take(limit - len(jobs))
            if not rows:
                break
            jobs += await self._listed(rows)
        return jobs

    async def _listed(self, rows: Sequence[Document]) -> list[JobRecord]:
        """The records of these listing rows, in their order, without cancelled or vanished jobs."""
        if not rows:
            return []
        records = await self.get_many([row["_id"] for row in rows])
        found = (records.get(row["_id"]) for row in rows)
        return [
            replace(record, updated_at=as_utc(row["updated_at"]))
            for row, record in zip(rows, found, strict=True)
            if record is not None and not record.cancelled
        ]

    @translate_errors
    async def records(self, job_uuids: Sequence[str]) -> dict[str, JobRecord]:
        """Records by uuid, in one query (what the listing's rows point to)."""
        return await self.get_many(job_uuids)

    @translate_errors
    async def insert(self, record: JobRecord) -> bool:
        """Insert a new job; False if a job with this uuid exists already."""
        try:
            await self._jobs.insert_one(job_to_document(record))
        except DuplicateKeyError:
            return False
        return True

    @translate_errors
    async def add_token(
        self, job_uuid: str, token: StoredToken, *, limit: int, now: datetime
    ) -> TokenOutcome:
        """Add a token to an existing job, after dropping its expired ones, unless it holds ``limit``.

        A live token is never pushed out to make room: it may be the one in an executor's callback URL.
        The count is part of the filter (no element at index ``limit - 1``), so concurrent adds cannot
        pass the limit together.
        """
        await self._jobs.update_one({"_id": job_uuid}, {"$pull": {"tokens": {"exp": {"$lte": now}}}})
        result = await self._jobs.update_one(
            {"_id": job_uuid, "cancelled": {"$ne": True}, f"tokens.{limit - 1}": {"$exists": False}},
            {"$push": {"tokens": token_to_document(token)}},
        )
        if result.modified_count == 1:
            return TokenOutcome.ADDED
        job = await self.get(job_uuid)
        return TokenOutcome.GONE if job is None or job.cancelled else TokenOutcome.FULL

    @translate_errors
    async def remove_tokens(self, job_uuid: str, digests: Sequence[str]) -> bool:
        """Remove the tokens with these digests; False when the job is gone (or being cancelled)."""
        result = await self._jobs.update_one(
            {"_id": job_uuid, "cancelled": {"$ne": True}},
            {"$pull": {"tokens": {"h": {"$in": list(digests)}}}},
        )
        return result.matched_count == 1

    @translate_errors
    async def append(self, entry: Entry, digest: str) -> AppendOutcome:
        try:
            marked = not await self._database.has_change_streams()
            await self._events.insert_one(event_to_document(entry, digest, marked=marked))
        except DuplicateKeyError as error:
            if duplicate_index(error) == "job_idempotency_key":
                return AppendOutcome.KEY_TAKEN
            return AppendOutcome.SEQ_TAKEN
        return AppendOutcome.APPENDED

    @translate_errors
    async def append_chains(self, entries: Sequence[tuple[Entry, str]]) -> list[AppendOutcome]:
        """Append a batch's entries, each job's in seq order, in as few ``insert_many`` as it takes.

        The insert is ordered: the database stops at the first entry it refuses, so an entry that
        follows a refused one of its job (and names that one's hash as its ``prev_hash``) is never
        written. The rest of the batch after the refusal is sent again, without that job's later
        entries, which are ``SKIPPED``. Without a refusal (the common case) it is one round trip.
        """
        outcomes: list[AppendOutcome | None] = [None] * len(entries)
        todo = list(range(len(entries)))
        marked = not await self._database.has_change_streams()
        while todo:
            documents = [event_to_document(*entries[i], marked=marked) for i in todo]
            try:
                await self._events.insert_many(documents, ordered=True)
            except BulkWriteError as error:
                failure = error.details["writeErrors"][0]
                if failure.get("code") != DUPLICATE_KEY:
                    raise
                index = int(failure["index"])
                for i in todo[:index]:
                    outcomes[i] = AppendOutcome.APPENDED
                refused = todo[index]
                outcomes[refused] = (
                    AppendOutcome.KEY_TAKEN
                    if duplicate_index_of(failure) == "job_idempotency_key"
                    else AppendOutcome.SEQ_TAKEN
                )
                job = entries[refused][0].job_uuid
                rest = todo[index + 1 :]
                for i in rest:
                    if entries[i][0].job_uuid == job:
                        outcomes[i] = AppendOutcome.SKIPPED
                todo = [i for i in rest if outcomes[i] is None]
                continue
            for i in todo:
                outcomes[i] = AppendOutcome.APPENDED
            todo = []
        return [outcome or AppendOutcome.SKIPPED for outcome in outcomes]

    @translate_errors
    async def advance_many(self, advances: Sequence[Advance]) -> list[bool]:
        """Every compare-and-set of a batch in one unordered ``bulk_write`` (one job each).

        True for a job whose record now stands at or past the last of its entries: moved there by this
        write or, when its compare-and-set did not match, by a reader that rolled it forward first.
        False needs the caller's attention, as a lost ``advance`` does (cancelled, or the token gone).
        """
        if not advances:
            return []
        writes = [self._compare_and_set(a.job, a.entries, a.token) for a in advances]
        await self._list([write.listing for write in writes if write.listing is not None])
        # Before the records: an entry applied is never missing from the counts (storage/counts.py).
        await self._counters.write([change for write in writes for change in write.changes])
        result = await self._jobs.bulk_write(
            [UpdateOne(write.query, write.update) for write in writes], ordered=False
        )
        if result.modified_count == len(advances):
            return [True] * len(advances)
        # The bulk reply counts, it does not say which: read back the few jobs of this batch.
        current = await self.get_many([a.job.uuid for a in advances])
        return [self._stands_at_or_past(current.get(a.job.uuid), a.entries[-1].entry.seq) for a in advances]

    @staticmethod
    def _stands_at_or_past(record: JobRecord | None, seq: int) -> bool:
        return record is not None and not record.cancelled and record.seq >= seq

    async def _list(self, records: Sequence[JobRecord]) -> None:
        """Write listings; one that already lists a later seq stays (its upsert's duplicate key). The
        extents take them in first, so that a listed job is never outside them for long."""
        if not records:
            return
        await self._extents.widen(listed.listing_document(record) for record in records)
        try:
            writes = [listed.listing_write(record) for record in records]
            await self._listing.bulk_write(writes, ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    def _compare_and_set(
        self, job: JobRecord, entries: Sequence[RecordedEntry], token: StoredToken | None
    ) -> _Write:
        after = job.advanced(entries)
        query: dict[str, Any] = {"_id": job.uuid, "seq": job.seq, "cancelled": {"$ne": True}}
        # Only what the entries change: the filter pins the rest to what ``job`` says.
        changes: dict[str, Any] = {
            name: getattr(after, name)
            for name in ADVANCED_FIELDS
            if getattr(after, name) != getattr(job, name)
        }
        if token is not None:
            query["tokens.h"] = token.digest
            changes["tokens.$.exp"] = token.expires_at
        counted = counts.changes_of(job, entries)
        if listed.due(job, after):
            changes["listed_at"] = after.updated_at
            return _Write(query, {"$set": changes}, after, counted)
        return _Write(query, {"$set": changes}, None, counted)

    @translate_errors
    async def advance(
        self,
        job: JobRecord,
        entries: Sequence[RecordedEntry],
        *,
        token: StoredToken | None = None,
    ) -> bool:
        """Move the record from ``job.seq`` to the last of ``entries`` (contiguous, in seq order).

        The filter is the compare-and-set: it matches only if nobody advanced or cancelled the job since
        ``job`` was read. ``token``, when given, gets its new expiry in the same write.
        """
        write = self._compare_and_set(job, entries, token)
        if write.listing is not None:
            await self._list([write.listing])
        await self._counters.write(write.changes)
        result = await self._jobs.update_one(write.query, write.update)
        return result.modified_count == 1

    @translate_errors
    async def entries_after(self, job_uuid: str, seq: int, limit: int) -> list[RecordedEntry]:
        """Up to ``limit`` entries after ``seq``, in seq order.

        Read as the closed range ``(seq, seq + limit]`` of the unique ``(job_uuid, seq)`` index: seqs
        have no gaps, so that is the page, and its cost does not depend on how long the history is. An
        open range (``seq > s``) would cost as much as the entries after it: SecantusDB does not stop an
        index scan at the query's limit (ADR 004; measured in ADR 014). Only a page that comes back short
        reads on past its range: at the history's end that is cheap (nothing follows), and in a damaged
        history with a gap it still finds what follows the gap, as the doctor and VerifyHistory need.
        """
        found = await self._entries(job_uuid, page_range(seq, limit), limit)
        if len(found) < limit:
            after = found[-1].entry.seq if found else seq
            found += await self._entries(job_uuid, {"$gt": after}, limit - len(found))
        return found

    async def _entries(self, job_uuid: str, seqs: dict[str, int], limit: int) -> list[RecordedEntry]:
        cursor = self._events.find({"job_uuid": job_uuid, "seq": seqs}).sort("seq", ASCENDING).limit(limit)
        return [event_from_document(document) async for document in cursor]

    async def iter_entries(self, job_uuid: str, *, batch: int = 1000) -> AsyncIterator[RecordedEntry]:
        """Every event of a job in seq order, fetched a batch at a time."""
        seq = 0
        while True:
            page = await self.entries_after(job_uuid, seq, batch)
            for event in page:
                yield event
            if len(page) < batch:
                return
            seq = page[-1].entry.seq

    @translate_errors
    async def entry_by_key(self, job_uuid: str, key: str) -> RecordedEntry | None:
        document = await self._events.find_one({"job_uuid": job_uuid, "idempotency_key": key})
        return None if document is None else event_from_document(document)

    @translate_errors
    async def delete_entry(self, event_uuid: str) -> None:
        await self._events.delete_one({"_id": event_uuid})

    @translate_errors
    async def mark_cancelled(self, job: JobRecord) -> bool:
        """Mark a never-RUNNING job as cancelled, if it is still exactly as read. It leaves the counts
        when its cancel is finished (``counters.cancelled``), before its record is deleted."""
        result = await self._jobs.update_one(
            {"_id": job.uuid, "seq": job.seq, "ever_running": {"$ne": True}, "cancelled": {"$ne": True}},
            {"$set": {"cancelled": True}},
        )
        return result.modified_count == 1

    @translate_errors
    async def purge(self, job_uuid: str) -> None:
        """Delete a cancelled job: its history, its listing, and the record (the cancel marker) last."""
        await self._events.delete_many({"job_uuid": job_uuid})
        await self._listing.delete_one({"_id": job_uuid})
        await self._jobs.delete_one({"_id": job_uuid, "cancelled": True})
