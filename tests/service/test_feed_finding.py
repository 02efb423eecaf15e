"""How the relay finds what it has not fed (service/feed_finding.py), where the two ways differ from what
tests/service/test_feed_relay.py covers on both: a resume point the database's log no longer holds, and
entries marked before the stream was followed."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from pipelinejobs_server.service import feed_finding
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.api.feed_support import fed, left_behind, list_all, rounds_of_another_relay
from tests.servers import served, test_settings
from tests.support import create_job, history, register_pipeline, send

Db = Database[dict[str, Any]]


def _quiet(settings: Settings) -> Settings:
    return replace(settings, feed=replace(settings.feed, relay=False))


def _prune(database: EmbeddedDatabase) -> None:
    """The database's log drops what it holds beyond its size now, not at its next prune."""
    client: MongoClient[dict[str, Any]]
    with MongoClient(database.uri) as client:
        assert client.admin.command("secantusAdmin.pruneOplog")["pruned"] > 0


@pytest.mark.slow  # a database process of its own: not in `make unit`
def test_a_recovery_cut_short_is_taken_up_by_the_next_relay(tmp_path: Path) -> None:
    """A relay that recovered and fed part of what it found (an entry still waited for its record) and
    then stopped: the next relay recovers again instead of resuming after entries it would never see."""
    with EmbeddedDatabase(tmp_path, oplog_max_entries=20) as database:
        relaying = test_settings(database.uri, "cut_short")
        with served(relaying) as api:
            job = create_job(api, register_pipeline(api))
            fed(api, 1)
        with served(_quiet(relaying)) as api:
            for n in range(10):
                send(api, job.job.uuid, "update", token=job.token, data={"n": n})
        client: MongoClient[dict[str, Any]]
        with MongoClient(database.uri) as client:
            waiting = left_behind(client["cut_short"], job.job.uuid)  # rolled forward a round later
        _prune(database)
        asyncio.run(rounds_of_another_relay(database.uri, "cut_short", 1))
        with served(relaying) as api:
            entries = fed(api, 12)
            assert [e.seq for e in entries] == list(range(1, 13))
            assert entries[-1].uuid == waiting.entry.uuid


@pytest.mark.slow  # a database process of its own: not in `make unit`
def test_what_was_written_after_a_resume_point_the_log_lost_is_fed_once_in_order(tmp_path: Path) -> None:
    """No relay runs while the writers outrun the database's log (a tiny one here): the next relay
    cannot resume the stream, starts it from now and finds, job by job, what the feed lacks."""
    with EmbeddedDatabase(tmp_path, oplog_max_entries=20) as database:
        relaying = test_settings(database.uri, "recovery")
        with served(relaying) as api:
            pipeline = register_pipeline(api)
            jobs = [create_job(api, pipeline, {"n": n}) for n in range(3)]
            send(api, jobs[0].job.uuid, "run", token=jobs[0].token)
            fed(api, 4)
        with served(_quiet(relaying)) as api:
            for job in jobs:
                for n in range(10):
                    send(api, job.job.uuid, "update", token=job.token, data={"n": n})
            quiet_job = create_job(api, pipeline, {"n": "while quiet"})  # a job the feed never saw
        _prune(database)
        with served(relaying) as api:
            entries = fed(api, 4 + 30 + 1)
            assert len({entry.uuid for entry in entries}) == len(entries) == 35
            for job in [*jobs, quiet_job]:
                assert [e.seq for e in entries if e.job_uuid == job.job.uuid] == [
                    h.seq for h in history(api, job.job.uuid)
                ]
            send(api, quiet_job.job.uuid, "run", token=quiet_job.token)  # and the stream goes on
            assert [e.seq for e in fed(api, 36)][-1] == 2
            assert len(list_all(api)[0]) == 36


def test_entries_an_older_version_marked_are_fed_first_when_the_stream_starts(
    mongodb_uri: str, database_name: str, db: Db, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed kept by a version that marked every entry (no resume point): the first relay that follows
    the stream starts it from now and takes over what was marked before, in order, clearing the marks,
    in as many reads as the marked entries take (two of two here)."""
    monkeypatch.setattr(feed_finding, "ADOPTED", 2)
    relaying = test_settings(mongodb_uri, database_name)
    quiet = _quiet(relaying)
    with served(relaying) as api:
        job = create_job(api, register_pipeline(api))
        fed(api, 1)
    with served(quiet) as api:
        for n in range(4):
            send(api, job.job.uuid, "update", token=job.token, data={"n": n})
    # As the older version left them: marked, and no resume point before them.
    db.job_events.update_many({"seq": {"$gt": 1}}, {"$set": {"feed_pending": True}})
    db.feed_meta.update_one({"_id": "head"}, {"$unset": {"resume": "", "resume_at": ""}})
    with served(relaying) as api:
        assert [e.seq for e in fed(api, 5)] == [1, 2, 3, 4, 5]
        send(api, job.job.uuid, "run", token=job.token)
        assert [e.seq for e in fed(api, 6)][-1] == 6
        assert len(list_all(api)[0]) == 6
    assert db.job_events.count_documents({"feed_pending": True}) == 0
