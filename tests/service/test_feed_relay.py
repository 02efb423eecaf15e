"""The feed's relay (service/feed_relay.py) against what crashes and races leave in the database: an entry
whose writer died between its two writes, one whose writer lost to a cancel, a relay that died between
feeding and deleting the marks, a mark whose entry never came or came late, entries marked the way of
the version before (ADR 015 amendment), and several relays at once. Each scene is made in the real database by
hand, the way the crash or race would leave it, while a real server relays."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from datetime import timedelta
from typing import Any

from pymongo.database import Database as SyncDatabase

from pipelinejobs_server.app import build_feed
from pipelinejobs_server.domain.clock import SYSTEM_CLOCK
from pipelinejobs_server.domain.records import RecordedEntry
from pipelinejobs_server.service.feed_relay import STUCK_S
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.documents import (
    event_from_document,
    event_to_document,
    job_from_document,
    pending_mark_document,
)
from pipelinejobs_server.storage.feed import OLD_MARK, FeedStore
from tests.api.feed_support import fed, list_all
from tests.support import Stubs, create_job, eventually, history, register_pipeline, send

Db = SyncDatabase[dict[str, Any]]


def next_of(db: Db, job_uuid: str, name: str = "update") -> RecordedEntry:
    """The job's next entry, as a writer would make it (not written)."""
    record = job_from_document(db.jobs.find_one({"_id": job_uuid}) or {})
    entry = record.next_entry(
        name,
        record.state,
        uuid=str(uuid.uuid4()),
        timestamp=record.updated_at,
        data={"left": True},
        source="grpc",
    )
    return RecordedEntry.of(entry)


def left_behind(db: Db, job_uuid: str, name: str = "update") -> RecordedEntry:
    """Insert the job's next entry without advancing its record: a writer that died between its writes."""
    recorded = next_of(db, job_uuid, name)
    db.feed_pending.insert_one(pending_mark_document(recorded.entry))  # as a writer does: the mark first
    db.job_events.insert_one(event_to_document(recorded.entry, recorded.hash))
    return recorded


def test_an_entry_its_dead_writer_left_behind_is_fed_once_rolled_forward(api: Stubs, db: Db) -> None:
    job = create_job(api, register_pipeline(api))
    send(api, job.job.uuid, "run", token=job.token)
    fed(api, 2)
    recorded = left_behind(db, job.job.uuid)
    # Not before the record covers it: the relay rolls the record forward after STUCK_S, then feeds it.
    entries = fed(api, 3)
    assert [(e.seq, e.uuid) for e in entries][-1] == (3, recorded.entry.uuid)
    assert (db.jobs.find_one({"_id": job.job.uuid}) or {})["seq"] == 3
    time.sleep(0.5)
    assert len(list_all(api)[0]) == 3


def test_an_entry_that_lost_to_a_cancel_is_never_fed(api: Stubs, db: Db) -> None:
    job = create_job(api, register_pipeline(api))
    fed(api, 1)
    # CancelJob's first write marked the record; the writer it beat had inserted its entry already and
    # is about to delete it (events.py, _after_lost_advance): that event was never accepted.
    db.jobs.update_one({"_id": job.job.uuid}, {"$set": {"cancelled": True}})
    left_behind(db, job.job.uuid)
    time.sleep(3.5)  # past STUCK_S and many relay rounds
    assert [e.seq for e in list_all(api)[0]] == [1]


def test_a_relay_that_died_between_feeding_and_deleting_the_marks_feeds_nothing_twice(
    api: Stubs, db: Db
) -> None:
    job = create_job(api, register_pipeline(api))
    for _ in range(3):
        send(api, job.job.uuid, "update", token=job.token)
    before = [e.uuid for e in fed(api, 4)]
    # The entries are in the feed but still marked, as a relay killed after its insert leaves them.
    db.feed_pending.insert_many(
        [
            pending_mark_document(event_from_document(d).entry)
            for d in db.job_events.find({"job_uuid": job.job.uuid})
        ]
    )
    eventually(lambda: db.feed_pending.count_documents({}) == 0, what="the marks deleted")
    send(api, job.job.uuid, "run", token=job.token)
    after = [e.uuid for e in fed(api, 5)]
    assert after[:4] == before
    assert len(after) == len(set(after)) == 5


def test_a_mark_whose_writer_died_before_its_entry_is_dropped_once_another_entry_takes_the_seq(
    api: Stubs, db: Db
) -> None:
    job = create_job(api, register_pipeline(api))
    fed(api, 1)
    lost = next_of(db, job.job.uuid)
    db.feed_pending.insert_one(pending_mark_document(lost.entry))  # and its writer died there
    send(api, job.job.uuid, "update", token=job.token)  # seq 2, taken by another entry
    send(api, job.job.uuid, "run", token=job.token)
    entries = fed(api, 3)
    assert [e.seq for e in entries] == [1, 2, 3]
    assert lost.entry.uuid not in {e.uuid for e in entries}
    eventually(lambda: db.feed_pending.count_documents({}) == 0, what="the marks deleted")


def test_a_mark_whose_entry_comes_late_waits_for_it(api: Stubs, db: Db) -> None:
    """A writer paused between its mark and its entry (longer than a dead writer's entry waits to be
    rolled forward): its mark stays while the seq is free, so the entry is fed once it is written."""
    job = create_job(api, register_pipeline(api))
    fed(api, 1)
    late = next_of(db, job.job.uuid)
    db.feed_pending.insert_one(pending_mark_document(late.entry))
    time.sleep(STUCK_S + 1.0)  # many relay rounds, each finding the mark without its entry
    db.job_events.insert_one(event_to_document(late.entry, late.hash))  # the writer goes on (then dies)
    entries = fed(api, 2)
    assert [(e.seq, e.uuid) for e in entries][-1] == (2, late.entry.uuid)


def test_entries_marked_the_old_way_are_fed_after_the_upgrade(
    api: Stubs, db: Db, mongodb_uri: str, database_name: str
) -> None:
    """A database written before the ADR 015 amendment: marks are a field of the history entries, under
    their partial index. The next start moves them to marks of their own: an entry marked and not fed
    is fed, one marked but fed already (its relay died before clearing) is not fed twice."""
    job = create_job(api, register_pipeline(api))
    send(api, job.job.uuid, "update", token=job.token)
    before = fed(api, 2)
    db.job_events.create_index(
        [(OLD_MARK, 1), ("job_uuid", 1), ("seq", 1)], name=OLD_MARK, partialFilterExpression={OLD_MARK: True}
    )
    db.job_events.update_one({"_id": before[1].uuid}, {"$set": {OLD_MARK: True}})  # fed, not cleared
    old = next_of(db, job.job.uuid)  # its writer died before advancing the record: rolled forward
    db.job_events.insert_one({**event_to_document(old.entry, old.hash), OLD_MARK: True})

    async def start() -> None:
        database = Database(mongodb_uri, database_name)
        try:
            await FeedStore(database).ensure()  # what a start does
        finally:
            await database.close()

    asyncio.run(start())
    assert db.job_events.count_documents({OLD_MARK: True}) == 0
    entries = fed(api, 3)
    assert [(e.seq, e.uuid) for e in entries] == [
        (1, before[0].uuid),
        (2, before[1].uuid),
        (3, old.entry.uuid),
    ]
    eventually(lambda: db.feed_pending.count_documents({}) == 0, what="the marks deleted")
    time.sleep(0.5)
    assert len(list_all(api)[0]) == 3


def test_several_relays_at_once_feed_each_entry_once_in_order(
    api: Stubs, db: Db, mongodb_uri: str, database_name: str
) -> None:
    """The lease only saves work: with it ignored, three relays (the server's and two more) racing on one
    database still feed every entry once, each job's in seq order, at positions without a gap."""
    pipeline = register_pipeline(api)
    jobs = [create_job(api, pipeline, {"n": n}) for n in range(4)]
    done = threading.Event()

    def writer(job_index: int) -> None:
        job = jobs[job_index]
        for n in range(25):
            send(api, job.job.uuid, "update", token=job.token, data={"n": n})
        done.set()

    async def relays() -> None:
        databases = [Database(mongodb_uri, database_name) for _ in range(2)]
        try:
            feeds = [build_feed(Settings(), database, SYSTEM_CLOCK) for database in databases]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await asyncio.gather(*(feed.relay.relay_once() for feed in feeds))
                if done.is_set() and db.feed_pending.count_documents({}) == 0:
                    return
        finally:
            for database in databases:
                await database.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(len(jobs))]
    for thread in threads:
        thread.start()
    asyncio.run(relays())
    for thread in threads:
        thread.join(timeout=60)
    entries = fed(api, 4 * 26)
    assert len({e.uuid for e in entries}) == len(entries) == 4 * 26
    for job in jobs:
        assert [e.seq for e in entries if e.job_uuid == job.job.uuid] == [
            h.seq for h in history(api, job.job.uuid)
        ]
    positions = sorted(doc["p"] for doc in db.feed.find({}, {"p": 1}))
    assert positions == list(range(1, len(entries) + 1))


def test_prune_moves_the_horizon_before_it_deletes(
    api: Stubs, db: Db, mongodb_uri: str, database_name: str
) -> None:
    job = create_job(api, register_pipeline(api))
    for _ in range(4):
        send(api, job.job.uuid, "update", token=job.token)
    entries = fed(api, 5)
    third = db.feed.find_one({"p": 3}) or {}

    async def prune() -> tuple[int, int]:
        database = Database(mongodb_uri, database_name)
        try:
            store = FeedStore(database)
            through = await store.prune(third["fed_at"] + timedelta(milliseconds=1))
            return through, await store.horizon()
        finally:
            await database.close()

    through, horizon = asyncio.run(prune())
    assert through == horizon >= 3
    assert db.feed.count_documents({"p": {"$lte": horizon}}) == 0
    assert [e.uuid for e in list_all(api)[0]] == [e.uuid for e in entries[horizon:]]
