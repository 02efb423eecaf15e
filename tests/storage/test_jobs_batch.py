"""A batch's writes (storage/jobs.py): ``append_chains`` never writes an entry after a refused one of its
job, and says which index refused; ``advance_many`` says which compare-and-sets stand. Against the real
embedded database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from pymongo.database import Database as SyncDatabase

from pipelinejobs_server.domain.history import utc_now_ms
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry
from pipelinejobs_server.domain.tokens import StoredToken
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.documents import job_to_document
from pipelinejobs_server.storage.jobs import Advance, AppendOutcome, JobStore
from tests.records import job_record

T = TypeVar("T")


def against(uri: str, name: str, work: Callable[[JobStore], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(uri, name)
        try:
            await database.ensure_indexes()
            return await work(JobStore(database))
        finally:
            await database.close()

    return asyncio.run(run())


def record(db: SyncDatabase[dict[str, Any]]) -> JobRecord:
    """A RUNNING job at seq 1 (its history's first entry is not needed by these writes)."""
    now = utc_now_ms()
    job = job_record(
        uuid=str(uuid.uuid4()),
        pipeline_uuid=str(uuid.uuid4()),
        state="RUNNING",
        seq=1,
        links={"lab": ["lab"], "experiment": [], "sample": []},
        last_event="run",
        head_hash="h0",
        created_at=now,
        tokens=(StoredToken("d" * 64, now + timedelta(hours=1)),),
        ever_running=True,
    )
    db.jobs.insert_one(job_to_document(job))
    return job


def chain(job: JobRecord, count: int, key: str = "") -> list[RecordedEntry]:
    entries: list[RecordedEntry] = []
    head = job
    for n in range(count):
        entry = head.next_entry(
            "update",
            "RUNNING",
            uuid=str(uuid.uuid4()),
            timestamp=utc_now_ms(),
            data={"n": n},
            source="grpc",
            idempotency_key=key if n == 0 else "",
        )
        recorded = RecordedEntry.of(entry)
        entries.append(recorded)
        head = head.advanced([recorded])
    return entries


def pairs(entries: list[RecordedEntry]) -> list[tuple[Any, str]]:
    return [(e.entry, e.hash) for e in entries]


def test_an_entry_after_a_refused_one_of_its_job_is_never_written(
    mongodb_uri: str, database_name: str, db: SyncDatabase[dict[str, Any]]
) -> None:
    taken, keyed, free = record(db), record(db), record(db)
    rival = chain(taken, 1)  # another writer holds taken's seq 2
    earlier = chain(keyed, 1, key="k")  # and keyed's key "k" is applied
    mine_taken, mine_keyed, mine_free = chain(taken, 3), chain(keyed, 2, key="k"), chain(free, 2)
    # seq 3 of keyed, below, is free: it must still not be written, it names an entry that is not.
    mine_keyed[0] = RecordedEntry.of(mine_keyed[0].entry.__class__(**{**vars(mine_keyed[0].entry), "seq": 3}))

    async def work(store: JobStore) -> list[AppendOutcome]:
        assert await store.append_chains(pairs(rival + earlier)) == [AppendOutcome.APPENDED] * 2
        batch = [mine_taken[0], mine_free[0], mine_keyed[0], mine_taken[1], mine_free[1], mine_taken[2]]
        batch.insert(3, mine_keyed[1])
        return await store.append_chains(pairs(batch))

    outcomes = against(mongodb_uri, database_name, work)
    a, s, k = AppendOutcome.APPENDED, AppendOutcome.SKIPPED, AppendOutcome.KEY_TAKEN
    assert outcomes == [AppendOutcome.SEQ_TAKEN, a, k, s, s, a, s]
    stored = {document["_id"] for document in db.job_events.find()}
    assert {e.entry.uuid for e in mine_free} <= stored
    assert not {e.entry.uuid for e in mine_taken + mine_keyed} & stored


def test_advance_many_says_which_compare_and_sets_stand(
    mongodb_uri: str, database_name: str, db: SyncDatabase[dict[str, Any]]
) -> None:
    moved, stale, gone = record(db), record(db), record(db)
    entries = {job.uuid: chain(job, 2) for job in (moved, stale, gone)}
    db.jobs.update_one({"_id": stale.uuid}, {"$set": {"seq": 7}})  # someone else moved it meanwhile
    db.jobs.update_one({"_id": gone.uuid}, {"$set": {"cancelled": True}})

    async def work(store: JobStore) -> list[bool]:
        await store.append_chains(pairs([e for job in (moved, stale, gone) for e in entries[job.uuid]]))
        token = moved.tokens[0]._replace(expires_at=utc_now_ms() + timedelta(hours=5))
        return await store.advance_many(
            [
                Advance(moved, entries[moved.uuid], token),
                Advance(stale, entries[stale.uuid]),
                Advance(gone, entries[gone.uuid]),
            ]
        )

    # stale stands past its entries (at 7, moved there by another writer): nothing to do for them.
    assert against(mongodb_uri, database_name, work) == [True, True, False]
    document = db.jobs.find_one({"_id": moved.uuid})
    assert document is not None
    assert document["seq"] == 3
    assert document["head_hash"] == entries[moved.uuid][-1].hash
    assert document["tokens"][0]["exp"] > moved.tokens[0].expires_at
