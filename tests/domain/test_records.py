"""What a job record looks like after its entries (``JobRecord.advanced``), and the entry that follows it
(``JobRecord.next_entry``): the one rule the service, storage and the doctor share."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.records import ADVANCED_FIELDS, JobRecord, RecordedEntry
from tests.records import job_record

T0 = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def fresh() -> JobRecord:
    return job_record(
        state=fsm.INITIAL_STATE,
        links={"lab": ["UW_BIOFAB"], "experiment": [], "sample": []},
        archive_path="/products/v1/x",
        session="brave-otter",
        created_at=T0,
    )


def follow(job: JobRecord, name: str, n: int) -> RecordedEntry:
    to_state = fsm.INITIAL_STATE if name == fsm.CREATE_EVENT else fsm.decide(job.state, name).to_state
    entry = job.next_entry(
        name, to_state, uuid=f"entry-{n}", timestamp=T0 + timedelta(seconds=n), data={"n": n}, source="grpc"
    )
    return RecordedEntry.of(entry)


def test_the_creation_entry_has_no_previous_state_or_hash() -> None:
    created = follow(fresh(), fsm.CREATE_EVENT, 1).entry
    assert (created.seq, created.from_state, created.to_state, created.prev_hash) == (1, "", "CREATED", "")


def test_each_entry_continues_the_record_and_the_record_follows_its_last_entry() -> None:
    job = fresh()
    for n, name in enumerate(("create", "run", "update", "finish"), start=1):
        recorded = follow(job, name, n)
        assert recorded.entry.seq == job.seq + 1
        assert recorded.entry.prev_hash == job.head_hash
        assert recorded.entry.from_state == (job.state if job.seq else "")
        job = job.advanced([recorded])
        assert (job.seq, job.state, job.last_event, job.head_hash) == (
            n,
            recorded.entry.to_state,
            name,
            recorded.hash,
        )
        assert job.updated_at == recorded.entry.timestamp
    assert job.state == "FINISHED"


def test_several_entries_at_once_end_where_one_by_one_does() -> None:
    one_by_one = fresh()
    entries = []
    for n, name in enumerate(("create", "update", "run", "update"), start=1):
        recorded = follow(one_by_one, name, n)
        entries.append(recorded)
        one_by_one = one_by_one.advanced([recorded])
    assert fresh().advanced(entries) == one_by_one


def test_ever_running_is_set_by_the_started_state_and_never_unset() -> None:
    job = fresh()
    for n, name in enumerate(("create", "update"), start=1):
        job = job.advanced([follow(job, name, n)])
    assert not job.ever_running
    job = job.advanced([follow(job, "run", 3)])
    assert job.ever_running
    job = job.advanced([follow(job, "fail", 4)])
    assert job.ever_running, "a job that ran stays one that ran: CancelJob may never delete it"


def test_no_entries_change_nothing_and_only_the_advanced_fields_ever_change() -> None:
    job = fresh()
    assert job.advanced([]) is job
    after = job.advanced([follow(job, fsm.CREATE_EVENT, 1)])
    changed = {name for name in JobRecord.__dataclass_fields__ if getattr(after, name) != getattr(job, name)}
    assert changed <= set(ADVANCED_FIELDS)
    assert replace(after, **{name: getattr(job, name) for name in ADVANCED_FIELDS}) == job
