"""The listing apart from the record (storage/listed.py, ADR 013): written on every change of state and when
its update time lags by the granularity, never moved back, kept up by every roll-forward, and made for
the jobs of a database from before it. Against the real embedded database, through a real server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.domain.history import utc_now_ms
from pipelinejobs_server.storage import listed
from pipelinejobs_server.storage.database import DUPLICATE_KEY
from tests.api.jobs.helpers import get_job
from tests.api.jobs.test_roll_forward import roll_record_back
from tests.domain.test_records import fresh
from tests.servers import ServerThread, test_settings
from tests.support import CLIENT, Stubs, create_job, register_pipeline, send, state_name, stubs

Document = dict[str, Any]


def listing_of(db: Database[Document], uuid: str) -> Document:
    document = db.job_listing.find_one({"_id": uuid})
    assert document is not None, "the job has no listing"
    return document


def listed_states(api: Stubs, *states: str) -> set[str]:
    request = job_service_pb2.ListJobsRequest(
        states=[job_pb2.JobState.Value(f"JOB_STATE_{state}") for state in states]
    )
    return {job.uuid for job in api.jobs.ListJobs(request, metadata=CLIENT).jobs}


def test_a_listing_is_due_on_a_change_of_state_and_after_the_granularity() -> None:
    moment = utc_now_ms()
    before = replace(fresh(), state="RUNNING", updated_at=moment, listed_at=moment)
    assert listed.due(replace(before, listed_at=None), before), "a record never listed"
    assert listed.due(before, replace(before, state="FINISHED"))
    assert not listed.due(before, replace(before, updated_at=before.updated_at + timedelta(milliseconds=999)))
    assert listed.due(before, replace(before, updated_at=before.updated_at + listed.GRANULARITY))


def test_updates_leave_the_listing_alone_until_the_state_changes(api: Stubs, db: Database[Document]) -> None:
    created = create_job(api, register_pipeline(api))
    uuid, token = created.job.uuid, created.token
    assert listing_of(db, uuid)["state"] == "CREATED"
    send(api, uuid, "run", token=token)
    listed_run = listing_of(db, uuid)
    assert (listed_run["state"], listed_run["listed_seq"]) == ("RUNNING", 2)
    for n in range(5):  # well within the granularity of each other
        send(api, uuid, "update", token=token, data={"n": n})
    assert listing_of(db, uuid) == listed_run, "an update within the granularity rewrote the listing"
    assert uuid in listed_states(api, "RUNNING")
    send(api, uuid, "finish", token=token)
    # The state is listed as soon as the event is acknowledged.
    assert uuid in listed_states(api, "FINISHED")
    assert uuid not in listed_states(api, "RUNNING")
    assert listing_of(db, uuid)["listed_seq"] == 8


def test_a_roll_forward_lists_the_state_it_rolls_to(api: Stubs, db: Database[Document]) -> None:
    created = create_job(api, register_pipeline(api))
    uuid, token = created.job.uuid, created.token
    send(api, uuid, "run", token=token)
    send(api, uuid, "finish", token=token)
    # As if the server died after the entry and before the listing and the record: both behind.
    roll_record_back(db, uuid)
    db.jobs.update_one({"_id": uuid}, {"$unset": {"listed_at": ""}})
    db.job_listing.update_one({"_id": uuid}, {"$set": {"state": "RUNNING", "listed_seq": 2}})
    assert uuid in listed_states(api, "RUNNING")
    assert state_name(get_job(api, uuid).state) == "FINISHED"  # the read rolls the record forward
    assert uuid in listed_states(api, "FINISHED")
    assert listing_of(db, uuid)["listed_seq"] == 3


def test_a_listing_is_never_moved_back(api: Stubs, db: Database[Document]) -> None:
    created = create_job(api, register_pipeline(api))
    uuid, token = created.job.uuid, created.token
    send(api, uuid, "run", token=token)
    listing = listing_of(db, uuid)
    # A late writer's listing of an older seq: the upsert's filter excludes it, its insert collides.
    late = listed.listing_write(replace(fresh(), uuid=uuid, state="CREATED", seq=1))
    with pytest.raises(BulkWriteError) as refused:
        db.job_listing.bulk_write([late])
    assert [e["code"] for e in refused.value.details["writeErrors"]] == [DUPLICATE_KEY]
    assert listing_of(db, uuid) == listing


def test_a_database_from_before_the_listing_gets_one_on_start(
    mongo: MongoClient[Document], mongodb_uri: str, database_name: str
) -> None:
    with stubs_of(mongodb_uri, database_name) as api:
        pipeline = register_pipeline(api)
        jobs = [create_job(api, pipeline, {"n": n}).job.uuid for n in range(3)]
    db = mongo[database_name]
    # As ADR 013 found it: the listing indexes on the records, no listing collection.
    db.job_listing.drop()
    db.jobs.create_index([("state", 1), ("created_at", -1), ("_id", -1)])
    with stubs_of(mongodb_uri, database_name) as api:
        assert listed_states(api, "CREATED") == set(jobs)
    assert list(db.jobs.index_information()) == ["_id_"]
    assert {document["_id"] for document in db.job_listing.find()} == set(jobs)


@contextmanager
def stubs_of(uri: str, database: str) -> Iterator[Stubs]:
    """A server of its own on ``database`` for the ``with`` block (a start is what migrates)."""
    server = ServerThread(test_settings(uri, database)).start()
    try:
        with stubs(server.address) as api:
            yield api
    finally:
        server.stop()
