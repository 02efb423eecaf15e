"""Protobuf <-> domain conversion (api/convert.py): enums for every state and event, Structs, records."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from google.protobuf import struct_pb2

from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_server.api import convert
from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import InvalidArgument, UnknownEvent
from pipelinejobs_server.domain.history import Entry
from pipelinejobs_server.domain.records import JobRecord, RecordedEntry
from pipelinejobs_server.domain.tokens import StoredToken

JOB_UUID = "0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11"
PIPELINE_UUID = "11111111-2222-5333-8444-555555555555"
EVENT_UUID = "22222222-3333-4444-8555-666666666666"
CREATED = datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)
UPDATED = datetime(2024, 5, 2, 8, 30, 15, 456000, tzinfo=UTC)


# Enums


@pytest.mark.parametrize("state", fsm.STATES)
def test_state_round_trip(state: str) -> None:
    value = convert.state_to_proto(state)
    assert value != job_pb2.JOB_STATE_UNSPECIFIED
    assert job_pb2.JobState.Name(value) == f"JOB_STATE_{state}"
    assert convert.state_from_proto(value) == state


def test_every_proto_state_is_an_fsm_state() -> None:
    names = [name.removeprefix("JOB_STATE_") for name, _ in job_pb2.JobState.items()]
    assert set(names) - {"UNSPECIFIED"} == set(fsm.STATES)


def test_no_state_is_unspecified() -> None:
    assert convert.state_to_proto("") == job_pb2.JOB_STATE_UNSPECIFIED


@pytest.mark.parametrize("event", fsm.EVENTS)
def test_event_round_trip(event: str) -> None:
    value = convert.event_to_proto(event)
    assert value != job_pb2.JOB_EVENT_UNSPECIFIED
    assert job_pb2.JobEvent.Name(value) == f"JOB_EVENT_{event.upper()}"
    assert convert.event_from_proto(value) == event


def test_every_proto_event_is_an_fsm_event() -> None:
    names = [name.removeprefix("JOB_EVENT_").lower() for name, _ in job_pb2.JobEvent.items()]
    assert set(names) - {"unspecified"} == set(fsm.EVENTS)


def test_no_event_is_unspecified() -> None:
    assert convert.event_to_proto("") == job_pb2.JOB_EVENT_UNSPECIFIED


@pytest.mark.parametrize("value", [0, 99, -1, 16])
def test_unknown_event_enum_is_refused(value: int) -> None:
    with pytest.raises(UnknownEvent) as caught:
        convert.event_from_proto(value)
    assert caught.value.metadata == {"field": "event"}


@pytest.mark.parametrize("source", ["grpc", "callback", "admin"])
def test_source_round_trip(source: str) -> None:
    value = convert.source_to_proto(source)
    assert value != job_pb2.EVENT_SOURCE_UNSPECIFIED
    assert convert.source_from_proto(value) == source


def test_every_proto_source_round_trips() -> None:
    for name, value in job_pb2.EventSource.items():
        if value != job_pb2.EVENT_SOURCE_UNSPECIFIED:
            source = convert.source_from_proto(value)
            assert source == name.removeprefix("EVENT_SOURCE_").lower()
            assert convert.source_to_proto(source) == value


def test_unspecified_source_is_left_for_the_service_to_choose() -> None:
    assert convert.source_from_proto(job_pb2.EVENT_SOURCE_UNSPECIFIED) == ""


def test_no_source_is_unspecified() -> None:
    assert convert.source_to_proto("") == job_pb2.EVENT_SOURCE_UNSPECIFIED


@pytest.mark.parametrize("value", [99, -1])
def test_unknown_source_enum_is_refused(value: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        convert.source_from_proto(value)
    assert caught.value.metadata == {"field": "source"}


# Structs


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"a": 1, "b": 2.5, "c": "text", "d": True, "e": None},
        {"list": [1, "two", [3, {"four": 4}], None, False]},
        {"nested": {"deeper": {"deepest": {"k": "ünïcödé"}}}},
        {"big": 2**53, "negative": -17, "zero": 0},
    ],
)
def test_struct_round_trip(value: dict[str, Any]) -> None:
    assert convert.struct_to_dict(convert.dict_to_struct(value), "data") == value


def test_struct_numbers_come_back_as_floats() -> None:
    # Struct carries every number as a double; canonical JSON (domain/canonical.py) evens this out.
    result = convert.struct_to_dict(convert.dict_to_struct({"n": 3}), "data")
    assert result == {"n": 3}
    assert isinstance(result["n"], float)


def test_empty_struct_is_an_empty_dict() -> None:
    assert convert.struct_to_dict(struct_pb2.Struct(), "data") == {}


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_struct_with_a_non_finite_number_is_refused(number: float) -> None:
    message = struct_pb2.Struct()
    message.update({"ok": 1, "bad": [number]})
    with pytest.raises(InvalidArgument) as caught:
        convert.struct_to_dict(message, "data")
    assert caught.value.metadata == {"field": "data"}


def test_struct_with_a_nan_at_the_top_level_is_refused() -> None:
    message = struct_pb2.Struct()
    message.fields["x"].number_value = float("nan")
    with pytest.raises(InvalidArgument) as caught:
        convert.struct_to_dict(message, "options")
    assert caught.value.metadata == {"field": "options"}


# Records


def job_record(**changes: Any) -> JobRecord:
    fields: dict[str, Any] = {
        "uuid": JOB_UUID,
        "pipeline_uuid": PIPELINE_UUID,
        "state": "RUNNING",
        "seq": 2,
        "links": {"lab": ["lab-a"], "experiment": ["exp-1", "exp-2"], "sample": ["s-9"]},
        "data": {"param": 1, "name": "x", "list": [1, 2]},
        "archive_path": "/products/v1/a/b/c/d/brave-otter-20240501T120000Z",
        "session": "brave-otter",
        "agent": "agent-1",
        "task": "task-7",
        "last_event": "run",
        "head_hash": "ab" * 32,
        "created_at": CREATED,
        "updated_at": UPDATED,
        "tokens": (StoredToken("cd" * 32, CREATED + timedelta(hours=72)),),
    }
    fields.update(changes)
    return JobRecord(**fields)


def test_job_to_proto() -> None:
    record = job_record()
    message = convert.job_to_proto(record)
    assert message.uuid == JOB_UUID
    assert message.pipeline_uuid == PIPELINE_UUID
    assert message.state == job_pb2.JOB_STATE_RUNNING
    assert message.seq == 2
    assert list(message.links.lab) == ["lab-a"]
    assert list(message.links.experiment) == ["exp-1", "exp-2"]
    assert list(message.links.sample) == ["s-9"]
    assert convert.struct_to_dict(message.data, "data") == record.data
    assert message.archive_path == record.archive_path
    assert message.session == "brave-otter"
    assert message.agent == "agent-1"
    assert message.task == "task-7"
    assert message.last_event == job_pb2.JOB_EVENT_RUN
    assert message.head_hash == "ab" * 32
    assert message.create_time.ToDatetime(tzinfo=UTC) == CREATED
    assert message.update_time.ToDatetime(tzinfo=UTC) == UPDATED


def test_job_to_proto_does_not_expose_token_hashes() -> None:
    message = convert.job_to_proto(job_record())
    assert "cd" * 32 not in str(message)


def test_job_to_proto_with_missing_links() -> None:
    message = convert.job_to_proto(job_record(links={"lab": ["only-lab"]}, data={}))
    assert list(message.links.lab) == ["only-lab"]
    assert list(message.links.experiment) == []
    assert list(message.links.sample) == []
    assert convert.struct_to_dict(message.data, "data") == {}


def test_job_to_proto_keeps_the_instant_of_other_time_zones() -> None:
    local = datetime(2024, 5, 1, 14, 0, 0, tzinfo=timezone(timedelta(hours=2)))
    message = convert.job_to_proto(job_record(created_at=local, updated_at=local))
    assert message.create_time.ToDatetime(tzinfo=UTC) == datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("state", fsm.STATES)
def test_job_to_proto_in_every_state(state: str) -> None:
    message = convert.job_to_proto(job_record(state=state))
    assert convert.state_from_proto(message.state) == state


def entry(**changes: Any) -> Entry:
    fields: dict[str, Any] = {
        "job_uuid": JOB_UUID,
        "seq": 2,
        "uuid": EVENT_UUID,
        "name": "run",
        "from_state": "CREATED",
        "to_state": "RUNNING",
        "timestamp": UPDATED,
        "data": {"host": "node-12", "cores": 64},
        "source": "callback",
        "idempotency_key": "agave:job-1:RUNNING",
        "prev_hash": "01" * 32,
    }
    fields.update(changes)
    return Entry(**fields)


def test_history_to_proto() -> None:
    recorded = RecordedEntry(entry(), "ff" * 32)
    message = convert.history_to_proto(recorded)
    assert message.seq == 2
    assert message.uuid == EVENT_UUID
    assert message.job_uuid == JOB_UUID
    assert message.name == job_pb2.JOB_EVENT_RUN
    assert message.from_state == job_pb2.JOB_STATE_CREATED
    assert message.to_state == job_pb2.JOB_STATE_RUNNING
    assert message.timestamp.ToDatetime(tzinfo=UTC) == UPDATED
    assert convert.struct_to_dict(message.data, "data") == {"host": "node-12", "cores": 64}
    assert message.source == job_pb2.EVENT_SOURCE_CALLBACK
    assert message.idempotency_key == "agave:job-1:RUNNING"
    assert message.prev_hash == "01" * 32
    assert message.hash == "ff" * 32


def test_history_to_proto_of_the_create_event() -> None:
    # The first entry has no previous state and no previous hash.
    first = entry(seq=1, name="create", from_state="", to_state="CREATED", prev_hash="", source="grpc")
    message = convert.history_to_proto(RecordedEntry(first, first.digest()))
    assert message.seq == 1
    assert message.name == job_pb2.JOB_EVENT_CREATE
    assert message.from_state == job_pb2.JOB_STATE_UNSPECIFIED
    assert message.to_state == job_pb2.JOB_STATE_CREATED
    assert message.source == job_pb2.EVENT_SOURCE_GRPC
    assert message.prev_hash == ""
    assert message.hash == first.digest()


@pytest.mark.parametrize(("event", "source", "destination"), list(fsm.transitions()))
def test_history_to_proto_for_every_transition(event: str, source: str, destination: str) -> None:
    to_state = source if destination == fsm.SAME else destination
    message = convert.history_to_proto(
        RecordedEntry(entry(name=event, from_state=source, to_state=to_state), "00" * 32)
    )
    assert convert.event_from_proto(message.name) == event
    if source:
        assert convert.state_from_proto(message.from_state) == source
    assert convert.state_from_proto(message.to_state) == to_state


def test_state_from_proto_mirrors_state_to_proto_for_unspecified_and_refuses_unknown() -> None:
    assert convert.state_from_proto(job_pb2.JOB_STATE_UNSPECIFIED) == ""
    with pytest.raises(InvalidArgument):
        convert.state_from_proto(99)
