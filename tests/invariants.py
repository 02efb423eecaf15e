"""The properties of DESIGN section 6.1, checked on one job's history as the API returns it."""

from __future__ import annotations

from collections.abc import Iterable

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.domain import fsm
from tests.support import CLIENT, Stubs, state_name


def event_name(value: int) -> str:
    return job_pb2.JobEvent.Name(job_pb2.JobEvent.ValueType(value)).removeprefix("JOB_EVENT_").lower()


def check_history(job: job_pb2.Job, events: list[job_pb2.HistoryEvent], acknowledged: Iterable[str]) -> None:
    """Gap-free seq, legal transitions, hash links, record == last entry, every acknowledged event once."""
    assert [event.seq for event in events] == list(range(1, len(events) + 1)), "seq has gaps or repeats"
    uuids = [event.uuid for event in events]
    assert len(set(uuids)) == len(uuids), "an entry appears twice"
    keys = [event.idempotency_key for event in events if event.idempotency_key]
    assert len(set(keys)) == len(keys), "an idempotency key was applied twice"
    assert event_name(events[0].name) == "create"
    previous_state, previous_hash = "CREATED", events[0].hash
    for event in events[1:]:
        name, source = event_name(event.name), state_name(event.from_state)
        assert source == previous_state, (
            f"seq {event.seq}: from_state {source}, but seq-1 left {previous_state}"
        )
        decision = fsm.decide(source, name)
        assert decision.accepted, f"seq {event.seq}: {source} --{name}--> is not a legal transition"
        assert state_name(event.to_state) == decision.to_state, f"seq {event.seq}: wrong to_state"
        assert event.prev_hash == previous_hash, f"seq {event.seq}: broken hash link"
        previous_state, previous_hash = decision.to_state, event.hash
    assert job.seq == len(events), "the job record's seq is not its last entry's"
    assert state_name(job.state) == previous_state, "the job record's state is not its last entry's to_state"
    assert job.head_hash == previous_hash
    missing = set(acknowledged) - set(uuids)
    assert not missing, f"{len(missing)} acknowledged events are not in the history"


def check_counts(api: Stubs, jobs: Iterable[job_pb2.Job]) -> None:
    """CountJobs is exact and counts ``jobs`` (every job of the database) in their states."""
    reply = api.jobs.CountJobs(job_service_pb2.CountJobsRequest(), metadata=CLIENT)
    assert reply.exact, "the counts are not exact"
    expected: dict[str, int] = {}
    for job in jobs:
        expected[state_name(job.state)] = expected.get(state_name(job.state), 0) + 1
    assert {state_name(c.state): c.count for c in reply.counts if c.count} == expected, "wrong counts"
