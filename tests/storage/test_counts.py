"""The pure parts of the job counts (storage/counts.py): which entries make a change, and where a pending
change stands against its job's record; what the records say the counts are."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from pipelinejobs_server.domain.history import Entry
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry
from pipelinejobs_server.storage import counts
from pipelinejobs_server.storage.counts import ALL, Verdict, judge
from tests.records import job_record

BORN = datetime(2026, 12, 2, 8, 0, 0, 123000, tzinfo=UTC)
JOB = "job-1"
PIPELINE = "pipeline-1"


def record(seq: int, state: str, *, cancelled: bool = False, born: datetime = BORN) -> JobRecord:
    return job_record(
        uuid=JOB,
        pipeline_uuid=PIPELINE,
        state=state,
        seq=seq,
        head_hash=f"hash-{seq}",
        created_at=born,
        cancelled=cancelled,
    )


def entry(seq: int, name: str, before: str, after: str) -> RecordedEntry:
    made = Entry(JOB, seq, f"entry-{seq}", name, before, after, BORN, {}, "grpc", "", "")
    return RecordedEntry(made, made.digest())


def stored(job: JobRecord) -> dict[str, Any]:
    """The record's fields the judge reads, as the database gives them back."""
    return {"_id": job.uuid, "seq": job.seq, "created_at": job.created_at, "cancelled": job.cancelled}


def test_the_creation_entry_and_state_changes_make_changes_and_updates_do_not() -> None:
    made = counts.changes_of(
        record(0, "CREATED"),
        [entry(1, "create", "CREATED", "CREATED"), entry(2, "run", "CREATED", "RUNNING")],
    )
    assert [(c["_id"], c["f"], c["t"]) for c in made] == [
        ("entry-1", None, "CREATED"),
        ("entry-2", "CREATED", "RUNNING"),
    ]
    assert counts.changes_of(record(2, "RUNNING"), [entry(3, "update", "RUNNING", "RUNNING")]) == []
    assert counts.delta_of(made[1]) == {
        (ALL, "CREATED"): -1,
        (PIPELINE, "CREATED"): -1,
        (ALL, "RUNNING"): 1,
        (PIPELINE, "RUNNING"): 1,
    }


def test_a_cancel_at_seq_zero_changes_nothing_and_one_later_takes_the_job_out() -> None:
    assert counts.cancel_of(record(0, "CREATED")) is None
    cancel = counts.cancel_of(record(3, "CREATED"))
    assert cancel is not None
    assert counts.delta_of(cancel) == {(ALL, "CREATED"): -1, (PIPELINE, "CREATED"): -1}
    assert cancel["_id"] == counts.cancel_key(JOB, counts.incarnation(BORN))


@pytest.mark.parametrize(
    ("stands", "verdict"),
    [
        (record(2, "RUNNING"), Verdict.APPLIED),  # its record reached it
        (record(5, "FINISHED"), Verdict.APPLIED),  # and went on
        (record(1, "CREATED"), Verdict.IN_FLIGHT),  # not yet: its writer or a roll-forward will
        (record(1, "CREATED", cancelled=True), Verdict.VOID),  # a cancel won the record
    ],
)
def test_a_change_against_its_record(stands: JobRecord, verdict: Verdict) -> None:
    change = counts.changes_of(record(1, "CREATED"), [entry(2, "run", "CREATED", "RUNNING")])[0]
    assert judge(change, stored(stands), None) is verdict


def test_a_change_of_a_deleted_job_counts_only_if_its_cancel_came_after_it() -> None:
    change = counts.changes_of(record(1, "CREATED"), [entry(2, "hold", "CREATED", "HELD")])[0]
    after = counts.cancel_of(record(2, "HELD"))
    before = counts.cancel_of(record(1, "CREATED"))
    assert judge(change, None, after) is Verdict.APPLIED
    assert judge(change, None, before) is Verdict.VOID  # its entry was deleted with the job, never applied
    assert judge(change, None, None) is Verdict.VOID
    # The same uuid created again: the record is another incarnation's, and says nothing of this one.
    again = stored(record(5, "RUNNING", born=BORN + timedelta(minutes=1)))
    assert judge(change, again, after) is Verdict.APPLIED
    assert judge(change, again, None) is Verdict.VOID


def test_the_records_count_a_half_done_cancel_until_it_wrote_its_change() -> None:
    rows = [{"_id": {"p": PIPELINE, "s": "RUNNING"}, "n": 2}]
    half_done = [{"_id": JOB, "pipeline_uuid": PIPELINE, "state": "CREATED", "created_at": BORN}]
    assert counts.from_records(rows, half_done, set()) == {
        (ALL, "RUNNING"): 2,
        (PIPELINE, "RUNNING"): 2,
        (ALL, "CREATED"): 1,
        (PIPELINE, "CREATED"): 1,
    }
    written = set(counts.half_done_keys(half_done))
    assert counts.from_records(rows, half_done, written) == {(ALL, "RUNNING"): 2, (PIPELINE, "RUNNING"): 2}
