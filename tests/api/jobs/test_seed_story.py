"""The seed's story (setup, run, update) and every path through the state machine, event by event, over
real gRPC; each path ends in a state that refuses ``run``."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import grpc
import pytest

from tests.api.jobs.helpers import event_label, get_job, refused, verify
from tests.support import Stubs, create_job, history, send, state_name


def test_seed_story_setup_run_update(api: Stubs, pipeline: str) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token

    ran = send(api, uuid, "run", token=token, data={"key1": "value1"})
    assert state_name(ran.job.state) == "RUNNING"
    updated = send(api, uuid, "update", token=token, data={"roadrunner": "meep-meep!"})
    assert state_name(updated.job.state) == "RUNNING"
    assert updated.job.seq == 3

    entries = history(api, uuid)
    assert [event_label(e.name) for e in entries] == ["create", "run", "update"]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [dict(e.data) for e in entries] == [{}, {"key1": "value1"}, {"roadrunner": "meep-meep!"}]
    assert [(state_name(e.from_state), state_name(e.to_state)) for e in entries] == [
        ("UNSPECIFIED", "CREATED"),
        ("CREATED", "RUNNING"),
        ("RUNNING", "RUNNING"),
    ]
    assert {e.job_uuid for e in entries} == {uuid}
    assert len({e.uuid for e in entries}) == 3
    assert entries[1].uuid == ran.event.uuid
    assert entries[2].uuid == updated.event.uuid

    moments = [e.timestamp.ToDatetime(tzinfo=UTC) for e in entries]
    # Millisecond precision, in UTC (a local time mislabelled as UTC would be hours off), in order.
    assert all(e.timestamp.nanos % 1_000_000 == 0 for e in entries)
    assert all(started <= moment <= datetime.now(UTC) + timedelta(seconds=1) for moment in moments)
    assert moments == sorted(moments)
    assert moments[0] < moments[-1]

    # The hash chain: each entry links to the one before it; the record's head is the last hash.
    assert entries[0].prev_hash == ""
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    assert len({e.hash for e in entries}) == 3
    current = get_job(api, uuid)
    assert current.head_hash == entries[-1].hash
    assert event_label(current.last_event) == "update"
    assert current.update_time.ToDatetime(tzinfo=UTC) == moments[-1]


FINALIZE_PATH = [
    ("update", "CREATED"),
    ("resource", "CREATED"),
    ("run", "RUNNING"),
    ("run", "RUNNING"),
    ("update", "RUNNING"),
    ("resource", "RUNNING"),
    ("finish", "FINISHED"),
    ("finish", "FINISHED"),
    ("indexed", "FINISHED"),
    ("index", "INDEXING"),
    ("index", "INDEXING"),
    ("update", "INDEXING"),
    ("indexed", "FINISHED"),
    ("validate", "VALIDATING"),
    ("update", "VALIDATING"),
    ("validated", "VALIDATED"),
    ("validated", "VALIDATED"),
    ("validate", "VALIDATING"),
    ("validated", "VALIDATED"),
    ("finalize", "FINALIZED"),
]
PATHS = {
    "to-finalized": FINALIZE_PATH,
    "finalized-retired": [*FINALIZE_PATH, ("retire", "RETIRED")],
    "created-failed-retired": [("fail", "FAILED"), ("retire", "RETIRED")],
    "running-failed-retired": [("run", "RUNNING"), ("fail", "FAILED"), ("retire", "RETIRED")],
    "indexing-failed-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("index", "INDEXING"),
        ("fail", "FAILED"),
        ("retire", "RETIRED"),
    ],
    "validating-failed-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("fail", "FAILED"),
        ("retire", "RETIRED"),
    ],
    "finished-retired": [("run", "RUNNING"), ("finish", "FINISHED"), ("retire", "RETIRED")],
    "validating-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("retire", "RETIRED"),
    ],
    "validated-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("validated", "VALIDATED"),
        ("retire", "RETIRED"),
    ],
    "rejected-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("reject", "REJECTED"),
        ("retire", "RETIRED"),
    ],
}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_event_path(api: Stubs, pipeline: str, path: list[tuple[str, str]]) -> None:
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token
    state = "CREATED"
    for seq, (event, expected) in enumerate(path, start=2):
        reply = send(api, uuid, event, token=token, data={"step": seq})
        assert reply.replayed is False
        assert reply.event.seq == seq
        assert (state_name(reply.event.from_state), state_name(reply.event.to_state)) == (state, expected)
        assert state_name(reply.job.state) == expected
        assert reply.job.seq == seq
        state = expected

    entries = history(api, uuid)
    assert [event_label(e.name) for e in entries] == ["create", *(event for event, _ in path)]
    assert [e.seq for e in entries] == list(range(1, len(path) + 2))
    assert state_name(get_job(api, uuid).state) == state
    check = verify(api, uuid)
    assert check.valid, check.reason
    assert check.checked == len(path) + 1

    # The end of a path is final for job tokens: run is refused, naming the state and the event.
    metadata = refused(
        lambda: send(api, uuid, "run", token=token),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert metadata == {"state": state, "event": "run"}
    assert len(history(api, uuid)) == len(path) + 1


def test_fail_records_and_keeps_history(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token
    send(api, uuid, "run", token=token)
    send(api, uuid, "update", token=token, data={"progress": 50})
    failed = send(api, uuid, "fail", token=token, data={"reason": "node lost"})

    assert state_name(failed.job.state) == "FAILED"
    current = get_job(api, uuid)
    assert state_name(current.state) == "FAILED"
    assert current.seq == 4
    entries = history(api, uuid)
    assert [event_label(e.name) for e in entries] == ["create", "run", "update", "fail"]
    assert dict(entries[-1].data) == {"reason": "node lost"}
    assert verify(api, uuid).valid
