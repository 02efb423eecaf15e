"""A record left behind its log (a server killed between the log insert and the record's compare-and-set,
DESIGN 6.3) is rolled forward by the next reader or writer."""

from __future__ import annotations

from pymongo.database import Database

from tests.api.jobs.helpers import Document, event_label, events_job, get_job, rejected, verify
from tests.support import Stubs, history, send, state_name


def roll_record_back(db: Database[Document], uuid: str) -> Document:
    """Put the job record back at its previous entry, as if the server died between the log insert and the
    record's compare-and-set. Returns the (still logged) last entry."""
    job = db.jobs.find_one({"_id": uuid})
    assert job is not None
    last = db.job_events.find_one({"job_uuid": uuid, "seq": job["seq"]})
    previous = db.job_events.find_one({"job_uuid": uuid, "seq": job["seq"] - 1})
    assert last is not None
    assert previous is not None
    changed = db.jobs.update_one(
        {"_id": uuid, "seq": job["seq"]},
        {
            "$set": {
                "seq": previous["seq"],
                "state": previous["to_state"],
                "head_hash": previous["hash"],
                "last_event": previous["name"],
                "updated_at": previous["timestamp"],
            }
        },
    )
    assert changed.modified_count == 1
    return last


def test_a_record_behind_its_log_is_rolled_forward_on_read(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    uuid, token = events_job(api, pipeline)  # ends with finish: RUNNING -> FINISHED at seq 5
    last = roll_record_back(db, uuid)

    job = get_job(api, uuid)
    assert job.seq == 5
    assert state_name(job.state) == "FINISHED"
    assert event_label(job.last_event) == "finish"
    assert job.head_hash == last["hash"]
    stored = db.jobs.find_one({"_id": uuid})
    assert stored is not None
    assert (stored["seq"], stored["state"]) == (5, "FINISHED")

    reply = send(api, uuid, "index", token=token)
    assert reply.event.seq == 6
    assert reply.event.prev_hash == last["hash"]
    assert [e.seq for e in history(api, uuid)] == [1, 2, 3, 4, 5, 6]
    check = verify(api, uuid)
    assert check.valid, check.reason
    assert check.checked == 6


def test_a_record_behind_its_log_is_rolled_forward_by_the_next_writer(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    """DESIGN 6.3: any reader *or writer* that finds the record behind the log rolls it forward.

    'index' is legal only from the logged state (FINISHED), not from the stale record's (RUNNING): a writer
    deciding on the stale record would refuse an event the job's real state allows.
    """
    uuid, token = events_job(api, pipeline)
    last = roll_record_back(db, uuid)

    reply = send(api, uuid, "index", token=token)
    assert reply.event.seq == 6
    assert state_name(reply.event.from_state) == "FINISHED"
    assert reply.event.prev_hash == last["hash"]
    assert state_name(reply.job.state) == "INDEXING"
    assert [e.seq for e in history(api, uuid)] == [1, 2, 3, 4, 5, 6]
    assert rejected(api, uuid) == []
    assert verify(api, uuid).valid


def test_a_record_behind_its_log_on_an_allowed_event_gets_the_next_seq(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    uuid, token = events_job(api, pipeline)
    roll_record_back(db, uuid)
    # 'finish' is legal from both the stale state (RUNNING) and the real one (FINISHED): the append loses
    # seq 5 to the logged entry, the writer catches up and takes seq 6.
    reply = send(api, uuid, "finish", token=token)
    assert reply.event.seq == 6
    assert state_name(reply.event.from_state) == "FINISHED"
    job = get_job(api, uuid)
    assert (job.seq, state_name(job.state)) == (6, "FINISHED")
    assert verify(api, uuid).valid
