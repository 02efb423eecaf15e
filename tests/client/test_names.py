"""pipelinejobs_client.names: every enum value to its short name and back, and the spellings accepted."""

from __future__ import annotations

import pytest

from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.errors import UnknownEvent
from pipelinejobs_client.names import (
    event_name,
    event_value,
    source_name,
    source_value,
    state_name,
    state_value,
)


@pytest.mark.parametrize("value", job_pb2.JobEvent.values())
def test_every_event_round_trips(value: int) -> None:
    name = event_name(value)
    assert name == name.lower()
    assert not name.startswith("job_event_")
    assert event_value(name) == value


@pytest.mark.parametrize("value", job_pb2.JobState.values())
def test_every_state_round_trips(value: int) -> None:
    name = state_name(value)
    if value == job_pb2.JOB_STATE_UNSPECIFIED:
        assert name == ""
    else:
        assert name == name.upper()
        assert not name.startswith("JOB_STATE_")
        assert state_value(name) == value


@pytest.mark.parametrize("value", job_pb2.EventSource.values())
def test_every_source_round_trips(value: int) -> None:
    name = source_name(value)
    assert name == name.lower()
    assert not name.startswith("event_source_")
    if value != job_pb2.EVENT_SOURCE_UNSPECIFIED:
        assert source_value(name) == value


@pytest.mark.parametrize("spelling", ["run", "RUN", " Run ", "JOB_EVENT_RUN", job_pb2.JOB_EVENT_RUN])
def test_event_spellings(spelling: str | int) -> None:
    assert event_value(spelling) == job_pb2.JOB_EVENT_RUN


@pytest.mark.parametrize("spelling", ["running", "RUNNING", "JOB_STATE_RUNNING", job_pb2.JOB_STATE_RUNNING])
def test_state_spellings(spelling: str | int) -> None:
    assert state_value(spelling) == job_pb2.JOB_STATE_RUNNING


def test_an_unknown_event_is_refused_with_a_typed_error() -> None:
    with pytest.raises(UnknownEvent) as caught:
        event_value("explode")
    assert (caught.value.reason, caught.value.metadata) == ("UNKNOWN_EVENT", {"event": "explode"})


def test_unknown_states_and_sources_are_value_errors() -> None:
    with pytest.raises(ValueError, match="JOB_STATE_SLEEPING"):
        state_value("sleeping")
    with pytest.raises(ValueError, match="EVENT_SOURCE_CARRIER_PIGEON"):
        source_value("carrier_pigeon")


def test_no_source_is_unspecified() -> None:
    assert source_value(None) == source_value("") == job_pb2.EVENT_SOURCE_UNSPECIFIED
