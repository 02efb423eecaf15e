"""The feed's relay (service/feed_relay.py) against what crashes and races leave in the database: an entry
whose writer died between its two writes, one whose writer lost to a cancel, a relay that died between
feeding and storing its resume point (or clearing the marks), a relay resuming where the last one left
off, and several relays at once. Each scene is made in the real database by hand, the way the crash or
race would leave it, while a real server relays.

Every test runs on both kinds of database (service/feed_finding.py): a replica set, where the relay
follows the history's change stream, and a standalone server, where it follows the writers' marks."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pymongo.database import Database as SyncDatabase

from pipelinejobs_server.app import build_feed
from pipelinejobs_server.domain.clock import SYSTEM_CLOCK
from pipelinejobs_server.service.feed_relay import FAILING_PAUSE_MAX_S, failing_pause
from pipelinejobs_server.settings import Feed, Settings
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.storage.feed import FeedStore
from tests.api.feed_support import fed, left_behind, list_all, marked, rounds_of_another_relay
from tests.servers import served, test_settings
from tests.support import Stubs, create_job, eventually, history, register_pipeline, send

Db = SyncDatabase[dict[str, Any]]
STANDALONE = "standalone"


# The standalone one is a database process of its own: not in `make unit`.
@pytest.fixture(scope="module", params=["replica set", pytest.param(STANDALONE, marks=pytest.mark.slow)])
def embedded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[EmbeddedDatabase]:
    """The database of this module's tests (and of their servers): each kind in turn."""
    if request.param != STANDALONE:
        yield request.getfixturevalue("embedded")  # the session's replica set
        return
    database = EmbeddedDatabase(tmp_path_factory.mktemp("standalone"), standalone=True)
    database.start()
    yield database
    database.stop()


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


def _resume_point(db: Db) -> Any:
    return (db.feed_meta.find_one({"_id": "head"}) or {}).get("resume")


def test_a_relay_that_died_before_storing_its_resume_point_feeds_nothing_twice(
    api: Stubs, db: Db, mongodb_uri: str, database_name: str
) -> None:
    if marked(db):
        pytest.skip("a standalone database has no stream to resume: the marks are the relay's place")
    job = create_job(api, register_pipeline(api))
    fed(api, 1)
    early = _resume_point(db)
    assert early is not None
    for _ in range(3):
        send(api, job.job.uuid, "update", token=job.token)
    before = [e.uuid for e in fed(api, 4)]
    # A relay killed after its insert and before the head (and the resume point with it) was written
    # leaves the resume point in front of entries already fed: the next relay reads them again.
    db.feed_meta.update_one({"_id": "head"}, {"$set": {"resume": early}})
    asyncio.run(rounds_of_another_relay(mongodb_uri, database_name, 3))
    send(api, job.job.uuid, "run", token=job.token)
    after = [e.uuid for e in fed(api, 5)]
    assert after[:4] == before
    assert len(after) == len(set(after)) == 5
    time.sleep(0.5)
    assert len(list_all(api)[0]) == 5


def test_a_relay_that_died_between_feeding_and_clearing_feeds_nothing_twice(api: Stubs, db: Db) -> None:
    if not marked(db):
        pytest.skip("on a replica set the writers do not mark: the stream's resume point is the place")
    job = create_job(api, register_pipeline(api))
    for _ in range(3):
        send(api, job.job.uuid, "update", token=job.token)
    before = [e.uuid for e in fed(api, 4)]
    # The entries are in the feed but still marked, as a relay killed after its insert leaves them.
    db.job_events.update_many({"job_uuid": job.job.uuid}, {"$set": {"feed_pending": True}})
    eventually(lambda: db.job_events.count_documents({"feed_pending": True}) == 0, what="the marks cleared")
    send(api, job.job.uuid, "run", token=job.token)
    after = [e.uuid for e in fed(api, 5)]
    assert after[:4] == before
    assert len(after) == len(set(after)) == 5


def test_what_is_written_while_no_relay_runs_is_fed_by_the_next_one(
    mongodb_uri: str, database_name: str
) -> None:
    """The next relay resumes the history's stream where the last one stored its point: nothing written
    in between is missed, nothing fed before is fed again."""
    relaying = test_settings(mongodb_uri, database_name)
    quiet = replace(relaying, feed=replace(relaying.feed, relay=False))
    with served(relaying) as api:
        job = create_job(api, register_pipeline(api))
        send(api, job.job.uuid, "run", token=job.token)
        fed(api, 2)
    with served(quiet) as api:
        for _ in range(3):
            send(api, job.job.uuid, "update", token=job.token)
        time.sleep(0.5)
        assert len(list_all(api)[0]) == 2  # no relay: nothing new in the feed
    with served(relaying) as api:
        entries = fed(api, 5)
        assert [e.seq for e in entries] == [1, 2, 3, 4, 5]
        time.sleep(0.5)
        assert len(list_all(api)[0]) == 5


def test_several_relays_at_once_feed_each_entry_once_in_order(
    api: Stubs, db: Db, mongodb_uri: str, database_name: str
) -> None:
    """The lease only saves work: with it ignored, three relays (the server's and two more) racing on one
    database still feed every entry once, each job's in seq order, at positions without a gap."""
    pipeline = register_pipeline(api)
    jobs = [create_job(api, pipeline, {"n": n}) for n in range(4)]
    finished: list[int] = []  # the writers that are done (list.append is atomic)

    def writer(job_index: int) -> None:
        job = jobs[job_index]
        for n in range(25):
            send(api, job.job.uuid, "update", token=job.token, data={"n": n})
        finished.append(job_index)

    async def relays() -> None:
        databases = [Database(mongodb_uri, database_name) for _ in range(2)]
        try:
            feeds = [build_feed(Settings(), database, SYSTEM_CLOCK) for database in databases]
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                await asyncio.gather(*(feed.relay.relay_once() for feed in feeds))
                # Until the last writer is done, not the first: stopping at the first cut the race short
                # and left the server's relay to finish alone.
                if len(finished) == len(jobs) and db.feed.count_documents({}) >= 4 * 26:
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


def test_events_written_in_a_batch_wake_the_relay_without_waiting_for_its_poll(
    mongodb_uri: str, database_name: str
) -> None:
    # A poll far longer than the test may wait: only the writers' wake-up can feed the events in time.
    slow_poll = Feed(bookmark_s=1.0, poll_s=60.0)
    with served(test_settings(mongodb_uri, database_name, feed=slow_poll)) as api:
        job = create_job(api, register_pipeline(api))
        fed(api, 1)
        for n in range(3):  # SendEvent: group commit's batch write (advance_many), not advance
            send(api, job.job.uuid, "run" if n == 0 else "update", token=job.token)
        entries = fed(api, 4, timeout_s=10)
        assert [entry.seq for entry in entries] == [1, 2, 3, 4]


def test_a_relay_whose_rounds_keep_failing_says_so_once_and_waits_longer_each_time(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """A database that does not answer: the relay warns once, not at every try, and its pauses double
    up to a cap (at one try per poll, the tries' abandoned requests once filled the database's
    connections while it built an index)."""
    assert [failing_pause(0.05, n) for n in (1, 2, 3, 4)] == [0.05, 0.1, 0.2, 0.4]
    assert failing_pause(0.05, 10) == failing_pause(0.05, 10_000) == FAILING_PAUSE_MAX_S

    async def relay_a_while() -> None:
        database = Database(f"mongodb://127.0.0.1:{closed_port}/?serverSelectionTimeoutMS=200", "down")
        try:
            relay = build_feed(Settings(), database, SYSTEM_CLOCK).relay
            relay.start()
            await asyncio.sleep(3.0)
            relay.stop()
            assert relay.task is not None
            await asyncio.wait_for(relay.task, 10)
        finally:
            await database.close()

    with caplog.at_level(logging.DEBUG, logger="pipelinejobs.feed"):
        asyncio.run(relay_a_while())
    tries = [r for r in caplog.records if r.getMessage().startswith("feed relay:")]
    assert len(tries) >= 3, [r.getMessage() for r in tries]
    assert [r.levelno for r in tries].count(logging.WARNING) == 1
