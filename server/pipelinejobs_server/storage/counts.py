"""Jobs per state (ADR 014): exact on every read, read without a scan, and nothing on the write path
waits for them.

A job is counted in its record's state from its creation entry (seq 1) until its cancel.

- **Changes.** Every entry that moves a job into the counts or from one state to another is also
  written as a small *change* document of ``job_count_changes``, keyed by the entry's uuid, before the
  compare-and-set that applies the entry to its record (``JobStore.advance``, ``advance_many``). Its key
  makes it idempotent: whoever applies the entry (its writer, a roll-forward, another replica) writes
  the same document, and the second write is a duplicate, ignored. A cancel writes one keyed by the
  job's incarnation, after its mark and before the job is deleted (``cancelled``); a cancel that
  stopped half-way writes it when it is finished.
- **Counters.** A folder (storage/folding.py) adds the pending changes whose records have reached them
  to ``job_counts`` (one document per scope and state) and marks them folded, in one transaction. Only
  folders write counters, so no writer ever waits on one; a replica killed inside a fold's transaction
  holds up folding until the database ends that transaction (its lifetime: 60 s), never a write.
- **Reads** add a scope's counters and its pending changes, read between two reads of the folds'
  generation (a fold moves changes into counters and bumps it in one transaction): exact whatever the
  folder's lag, including entries that are written and not yet applied to their records (as the log
  has them: they are applied, by their writer or a roll-forward).

Earlier, the counters moved in one transaction with each compare-and-set. A replica killed inside one
left its records and counters locked for the transaction's lifetime, and every later write of those
jobs, and every batch they were in, waited for it: the fault suites saw no acknowledgement for 30 s.

The scope is ``*`` (all jobs) or a pipeline uuid. A database that had jobs before the counters did is
counted once (``recount``). On a server without transactions (a standalone mongod or SecantusDB
``--standalone``) a fold is not atomic, so counts are never reported exact there.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.errors import BulkWriteError
from pymongo.read_concern import ReadConcern

from pipelinejobs_server.domain.records import JobRecord, RecordedEntry

from .database import DUPLICATE_KEY, DURABLE, Database, Document, translate_errors

ALL = "*"
READY = "ready"  # the database was counted (``recount``)
FOLDS = "folds"  # the folds' generation, bumped by every fold
BASE = "base"
PENDING = "pending"
GENERATION_RETRIES = 5

# (scope, state) -> how much the count changes
Delta = Counter[tuple[str, str]]


def moved(pipeline_uuid: str, before: str | None, after: str | None) -> Delta:
    """The change a job of ``pipeline_uuid`` makes to the counts by going from state ``before`` to
    ``after`` (None: not counted, i.e. before its creation or after its cancel)."""
    delta: Delta = Counter()
    if before == after:
        return delta
    for scope in (ALL, pipeline_uuid):
        if before is not None:
            delta[(scope, before)] -= 1
        if after is not None:
            delta[(scope, after)] += 1
    return delta


def counted_state(seq: int, state: str) -> str | None:
    """The state a record at ``seq`` is counted in: none before its creation entry (seq 1)."""
    return state if seq > 0 else None


def incarnation(created_at: datetime) -> int:
    """A job's incarnation: a cancelled job is deleted, and the same uuid may be created again. In
    milliseconds, as BSON keeps a time, so that a record read back names the same one."""
    return int(created_at.timestamp() * 1000)


def cancel_key(job_uuid: str, born: int) -> str:
    return f"cancel:{job_uuid}:{born}"


def changes_of(job: JobRecord, entries: Sequence[RecordedEntry]) -> list[Document]:
    """The change documents of the entries that move ``job`` into the counts or between states."""
    born = incarnation(job.created_at)
    documents = []
    for recorded in entries:
        entry = recorded.entry
        before = None if entry.seq == 1 else entry.from_state
        if before == entry.to_state:
            continue
        documents.append(_change(entry.uuid, job, entry.seq, born, before, entry.to_state))
    return documents


def cancel_of(job: JobRecord) -> Document | None:
    """The change document of ``job``'s cancel (None if it was never counted: cancelled at seq 0)."""
    before = counted_state(job.seq, job.state)
    if before is None:
        return None
    born = incarnation(job.created_at)
    return _change(cancel_key(job.uuid, born), job, job.seq, born, before, None)


def _change(key: str, job: JobRecord, seq: int, born: int, before: str | None, after: str | None) -> Document:
    return {
        "_id": key,
        "j": job.uuid,
        "s": seq,
        "c": born,
        "p": job.pipeline_uuid,
        "f": before,
        "t": after,
        PENDING: True,
    }


def delta_of(change: Mapping[str, Any]) -> Delta:
    return moved(str(change["p"]), change.get("f"), change.get("t"))


class Verdict(enum.Enum):
    APPLIED = "applied"  # its record reached it (or went past it, or was cancelled after it)
    IN_FLIGHT = "in flight"  # written, its entry not yet applied: by its writer or a roll-forward
    VOID = "void"  # its entry will never count: a cancel won the race for the record and deletes it


def judge(
    change: Mapping[str, Any], record: Mapping[str, Any] | None, cancel: Mapping[str, Any] | None
) -> Verdict:
    """Where a pending change stands, from its job's record (None: deleted) and that incarnation's cancel
    change (None: none written). Pure, for the folder, the recount and the doctor alike."""
    if str(change["_id"]).startswith("cancel:"):
        return Verdict.APPLIED  # written after the cancel's mark
    same = record is not None and incarnation_of(record) == change["c"]
    if same and record is not None:
        if int(record.get("seq", 0)) >= int(change["s"]):
            return Verdict.APPLIED
        return Verdict.VOID if record.get("cancelled") else Verdict.IN_FLIGHT
    # The record is gone or another incarnation's: this one was cancelled (nothing else deletes a job).
    if cancel is not None and int(cancel["s"]) >= int(change["s"]):
        return Verdict.APPLIED
    return Verdict.VOID


def incarnation_of(record: Mapping[str, Any]) -> int:
    created = record.get("created_at")
    return incarnation(created) if isinstance(created, datetime) else -1


RECORD_FIELDS = {"seq": 1, "created_at": 1, "cancelled": 1}


RECORDS_PER_STATE: list[Document] = [
    {"$match": {"seq": {"$gt": 0}, "cancelled": {"$ne": True}}},
    {"$group": {"_id": {"p": "$pipeline_uuid", "s": "$state"}, "n": {"$sum": 1}}},
]
HALF_DONE: Document = {"seq": {"$gt": 0}, "cancelled": True}
HALF_DONE_FIELDS = {"pipeline_uuid": 1, "state": 1, "created_at": 1}


def half_done_keys(half_done: Sequence[Mapping[str, Any]]) -> list[str]:
    """The cancel changes that cancelled records (``HALF_DONE``) may have written."""
    return [cancel_key(str(r["_id"]), incarnation_of(r)) for r in half_done]


def from_records(
    rows: Iterable[Mapping[str, Any]], half_done: Sequence[Mapping[str, Any]], written: set[str]
) -> Delta:
    """What the records say the counts are, from ``RECORDS_PER_STATE``'s rows: every record past its
    creation and not cancelled, and the cancelled ones whose cancel has not written its change (it
    stopped half-way; it is finished later)."""
    found: Delta = Counter()
    for row in rows:
        for key, n in moved(str(row["_id"]["p"]), None, str(row["_id"]["s"])).items():
            found[key] += n * int(row["n"])
    for record, cancel in zip(half_done, half_done_keys(half_done), strict=True):
        if cancel not in written:
            found.update(moved(str(record["pipeline_uuid"]), None, str(record["state"])))
    return found


def cancel_keys(changes: Iterable[Mapping[str, Any]]) -> list[str]:
    """The cancel changes that ``judge`` needs for ``changes``."""
    return sorted({cancel_key(str(c["j"]), int(c["c"])) for c in changes})


def verdicts(
    changes: Sequence[Mapping[str, Any]],
    records: Mapping[str, Mapping[str, Any]],
    cancels: Mapping[str, Mapping[str, Any]],
) -> list[Verdict]:
    """``judge`` for each change, given the records (``RECORD_FIELDS``) and cancels found by key."""
    return [
        judge(c, records.get(str(c["j"])), cancels.get(cancel_key(str(c["j"]), int(c["c"])))) for c in changes
    ]


def applied_total(changes: Sequence[Mapping[str, Any]], judged: Sequence[Verdict]) -> Delta:
    return total(c for c, verdict in zip(changes, judged, strict=True) if verdict is Verdict.APPLIED)


@dataclass(frozen=True)
class Folded:
    """What one fold did: of ``read`` pending changes, ``folded`` were added to the counters and
    ``forgotten`` were void; the rest are in flight. ``last`` is the key of the last one read."""

    folded: int
    forgotten: int
    read: int
    last: str


@dataclass(frozen=True)
class Counts:
    """Jobs per state of one scope; ``exact`` is False until the database is counted (``recount``) and
    on a server without transactions."""

    states: dict[str, int]
    exact: bool


class Counters:
    def __init__(self, database: Database) -> None:
        self._client = database.client
        self._jobs = database.collections.jobs
        self._counts = database.collections.job_counts
        self._changes = database.collections.job_count_changes
        self._transactions: bool | None = None
        self._ready = False

    async def transactions(self) -> bool:
        """Whether the server runs transactions: a replica-set member or a mongos (asked once)."""
        if self._transactions is None:
            hello = await self._client.admin.command("hello")
            self._transactions = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
        return self._transactions

    # -- the write path ---------------------------------------------------------------------------------

    async def write(self, changes: Sequence[Document]) -> None:
        """Write change documents; one already there (the same entry, written by another) is left."""
        if not changes:
            return
        try:
            await self._changes.insert_many(list(changes), ordered=False)
        except BulkWriteError as error:
            if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                raise

    @translate_errors
    async def cancelled(self, job: JobRecord) -> None:
        """``job`` (as its cancel marked it) leaves the counts."""
        change = cancel_of(job)
        if change is not None:
            await self.write([change])

    # -- reading -----------------------------------------------------------------------------------------

    @translate_errors
    async def counts(self, scope: str = ALL) -> Counts:
        """The jobs per state of ``scope`` (``ALL`` or a pipeline uuid): its counters and its pending
        changes, read between two equal reads of the folds' generation (so no fold moved any between)."""
        states: Counter[str] = Counter()
        held_still = False
        for _ in range(GENERATION_RETRIES):
            before = await self._generation()
            states = Counter()
            async for document in self._counts.find({"scope": scope}, {"state": 1, "n": 1}):
                states[str(document["state"])] += int(document.get("n", 0))
            pending = {PENDING: True} if scope == ALL else {PENDING: True, "p": scope}
            async for change in self._changes.find(pending, {"p": 1, "f": 1, "t": 1}):
                for (changed_scope, state), n in delta_of(change).items():
                    if changed_scope == scope:
                        states[state] += n
            if await self._generation() == before:
                held_still = True
                break
        # Folds between every pair of reads (never seen: a fold runs every half second) leave a sum that
        # may have missed or doubled a change: said, not hidden.
        exact = held_still and await self.ready() and await self.transactions()
        return Counts({state: n for state, n in states.items() if n}, exact)

    async def _generation(self, session: AsyncClientSession | None = None) -> int:
        document = await self._counts.find_one({"_id": FOLDS}, {"gen": 1}, session=session)
        return int(document["gen"]) if document else 0

    @translate_errors
    async def ready(self) -> bool:
        """Whether the database was counted. Once it was, it stays so (only deleting ``job_counts`` by
        hand undoes it, with the servers stopped: docs/operations.md), so a yes is asked only once."""
        if not self._ready:
            self._ready = await self._counts.find_one({"_id": READY}, {"_id": 1}) is not None
        return self._ready

    # -- folding -----------------------------------------------------------------------------------------

    @translate_errors
    async def fold(self, now: datetime, after: str, limit: int) -> Folded:
        """Take up to ``limit`` pending changes after the key ``after``, in key order: fold those whose
        records reached them into the counters and forget void ones, in one transaction."""

        async def body(session: AsyncClientSession | None) -> Folded:
            changes = (
                await self._changes.find({PENDING: True, "_id": {"$gt": after}}, session=session)
                .sort("_id", ASCENDING)
                .limit(limit)
                .to_list()
            )
            if not changes:
                return Folded(0, 0, 0, "")
            verdicts = await self._judged(changes, session)
            applied = [c for c, v in zip(changes, verdicts, strict=True) if v is Verdict.APPLIED]
            void = [c for c, v in zip(changes, verdicts, strict=True) if v is Verdict.VOID]
            if applied:
                await self._add(total(applied), session)
                ids = [c["_id"] for c in applied]
                await self._changes.update_many(
                    {"_id": {"$in": ids}, PENDING: True},
                    {"$unset": {PENDING: ""}, "$set": {"folded_at": now}},
                    session=session,
                )
            if void:
                await self._changes.delete_many({"_id": {"$in": [c["_id"] for c in void]}}, session=session)
            if applied or void:
                await self._counts.update_one(
                    {"_id": FOLDS}, {"$inc": {"gen": 1}}, upsert=True, session=session
                )
            return Folded(len(applied), len(void), len(changes), str(changes[-1]["_id"]))

        if not await self.transactions():
            return await body(None)
        async with self._client.start_session() as session:
            folded: Folded = await session.with_transaction(body, write_concern=DURABLE)
        return folded

    async def _add(self, delta: Delta, session: AsyncClientSession | None) -> None:
        for (scope, state), n in sorted(delta.items()):
            if n:
                await self._counts.update_one(
                    {"_id": f"{scope}|{state}"},
                    {"$inc": {"n": n}, "$setOnInsert": {"scope": scope, "state": state}},
                    upsert=True,
                    session=session,
                )

    async def _judged(self, changes: Sequence[Document], session: AsyncClientSession | None) -> list[Verdict]:
        jobs = sorted({str(c["j"]) for c in changes})
        records = {
            str(r["_id"]): r
            async for r in self._jobs.find({"_id": {"$in": jobs}}, RECORD_FIELDS, session=session)
        }
        found = self._changes.find({"_id": {"$in": cancel_keys(changes)}}, session=session)
        return verdicts(changes, records, {str(c["_id"]): c async for c in found})

    # -- counting a database that had jobs before the counters --------------------------------------------

    @translate_errors
    async def recount(self, now: datetime) -> bool:
        """Count a database whose counters are not ready; True if this call counted it.

        One snapshot transaction: the records counted and what the counters and the applied pending
        changes say as of one moment; the difference written to each key's ``base`` document, and
        ``ready``. What is written after the snapshot is counted on top of it.
        """
        if not await self.transactions():
            if await self.ready():
                return False
            await self._write_bases(now, None)
            return True

        async def body(session: AsyncClientSession) -> bool:
            if await self._counts.find_one({"_id": READY}, session=session) is not None:
                return False  # another replica counted it first
            await self._write_bases(now, session)
            return True

        async with self._client.start_session() as session:
            counted = await session.with_transaction(
                body, read_concern=ReadConcern("snapshot"), write_concern=DURABLE
            )
        return bool(counted)

    async def _write_bases(self, now: datetime, session: AsyncClientSession | None) -> None:
        records = await self.records_per_state(session)
        counted = await self.counted(session, include_base=False)
        await self._counts.delete_many({"_id": {"$regex": f"\\|{BASE}$"}}, session=session)
        bases = _bases(records, counted)
        if bases:
            await self._counts.insert_many(bases, session=session)
        await self._counts.update_one({"_id": READY}, {"$set": {"at": now}}, upsert=True, session=session)
        await self._counts.update_one({"_id": FOLDS}, {"$inc": {"gen": 1}}, upsert=True, session=session)

    async def records_per_state(self, session: AsyncClientSession | None) -> Delta:
        """What the records say the counts are (``from_records``)."""
        rows = await (await self._jobs.aggregate(RECORDS_PER_STATE, session=session)).to_list()
        half_done = await self._jobs.find(HALF_DONE, HALF_DONE_FIELDS, session=session).to_list()
        keys = half_done_keys(half_done)
        found = self._changes.find({"_id": {"$in": keys}}, {"_id": 1}, session=session)
        return from_records(rows, half_done, {str(c["_id"]) async for c in found})

    async def counted(self, session: AsyncClientSession | None, *, include_base: bool = True) -> Delta:
        """What the counts say, leaving out changes whose entries are not applied yet (or never will
        be): the counters and the applied pending changes, to compare with ``records_per_state``."""
        found: Delta = Counter()
        async for document in self._counts.find({"scope": {"$exists": True}}, session=session):
            if not include_base and str(document["_id"]).endswith(f"|{BASE}"):
                continue
            found[(str(document["scope"]), str(document["state"]))] += int(document.get("n", 0))
        changes = await self._changes.find({PENDING: True}, session=session).to_list()
        found.update(applied_total(changes, await self._judged(changes, session)))
        return found


def _bases(records: Delta, counted: Delta) -> list[Document]:
    """The ``base`` documents that bring ``counted`` level with ``records``."""
    documents = []
    for scope, state in sorted(set(records) | set(counted)):
        n = records[(scope, state)] - counted[(scope, state)]
        if n:
            documents.append({"_id": f"{scope}|{state}|{BASE}", "scope": scope, "state": state, "n": n})
    return documents


def total(changes: Iterable[Mapping[str, Any]]) -> Delta:
    found: Delta = Counter()
    for change in changes:
        found.update(delta_of(change))
    return found
