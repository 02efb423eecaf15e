"""VerifyHistory: an untouched history is valid; an edited, deleted or deleted last entry is found."""

from __future__ import annotations

from pymongo.database import Database

from tests.api.jobs.helpers import Document, events_job, get_job, verify
from tests.support import Stubs


def test_verify_history_of_an_untouched_job(api: Stubs, pipeline: str) -> None:
    uuid, _ = events_job(api, pipeline)
    check = verify(api, uuid)
    assert check.valid is True
    assert check.checked == get_job(api, uuid).seq == 5
    assert check.first_bad_seq == 0
    assert check.reason == ""


def test_verify_history_finds_an_edited_event(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    uuid, _ = events_job(api, pipeline)
    changed = db.job_events.update_one(
        {"job_uuid": uuid, "seq": 3}, {"$set": {"data_json": '{"roadrunner":"caught"}'}}
    )
    assert changed.modified_count == 1
    check = verify(api, uuid)
    assert check.valid is False
    assert check.first_bad_seq == 3
    assert check.checked == 2
    assert check.reason


def test_verify_history_finds_a_deleted_event(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    uuid, _ = events_job(api, pipeline)
    assert db.job_events.delete_one({"job_uuid": uuid, "seq": 2}).deleted_count == 1
    check = verify(api, uuid)
    assert check.valid is False
    assert check.first_bad_seq == 2


def test_verify_history_finds_a_deleted_last_event(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    uuid, _ = events_job(api, pipeline)
    assert db.job_events.delete_one({"job_uuid": uuid, "seq": 5}).deleted_count == 1
    check = verify(api, uuid)
    assert check.valid is False
    assert check.first_bad_seq == 5
