"""Request field checks (service/validation.py): each failure is precise and names its field."""

from __future__ import annotations

from typing import Any

import pytest

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import DataTooLarge, InvalidArgument, UnknownEvent
from pipelinejobs_server.service import validation

UUID = "0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11"


def nested(levels: int) -> dict[str, Any]:
    """An object nested ``levels`` deep: {"k": {"k": ... {"k": 1}}}."""
    value: dict[str, Any] = {"k": 1}
    for _ in range(levels - 1):
        value = {"k": value}
    return value


# uuid_field


def test_uuid_is_accepted() -> None:
    assert validation.uuid_field(UUID, "uuid") == UUID


def test_empty_uuid_is_required() -> None:
    with pytest.raises(InvalidArgument, match="required") as caught:
        validation.uuid_field("", "pipeline_uuid")
    assert caught.value.metadata == {"field": "pipeline_uuid"}


@pytest.mark.parametrize(
    "value",
    [
        UUID.upper(),
        UUID.replace("-", ""),
        "{" + UUID + "}",
        "urn:uuid:" + UUID,
        " " + UUID,
        UUID + "\n",
        UUID[:-1],
        "not-a-uuid",
        "x" * 10_000,
    ],
)
def test_malformed_uuid_is_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.uuid_field(value, "job_uuid")
    assert type(caught.value) is InvalidArgument
    assert caught.value.metadata == {"field": "job_uuid"}
    # The echo of the bad value is bounded.
    assert len(caught.value.message) < 200


# event_name


@pytest.mark.parametrize("event", fsm.EVENTS)
def test_known_events_are_accepted(event: str) -> None:
    assert validation.event_name(event) == event


@pytest.mark.parametrize("event", ["", "RUN", "Run", "started", "run ", "runn", "x" * 1000])
def test_unknown_event_is_refused(event: str) -> None:
    with pytest.raises(UnknownEvent) as caught:
        validation.event_name(event)
    assert caught.value.metadata == {"field": "event"}
    assert caught.value.reason == "UNKNOWN_EVENT"
    # The message lists the known events, so the caller can fix the request.
    assert "finish" in caught.value.message


def test_unknown_event_is_an_invalid_argument() -> None:
    with pytest.raises(InvalidArgument):
        validation.event_name("bogus")


# json_object


def test_json_object_within_limits_is_returned() -> None:
    value = {"a": 1, "b": [1, 2, {"c": "d"}], "e": None, "f": True, "g": 1.5}
    assert validation.json_object(value, "data", max_bytes=1024, max_depth=8) is value


def test_empty_object_is_accepted() -> None:
    assert validation.json_object({}, "data", max_bytes=2, max_depth=1) == {}


def test_depth_at_the_limit_is_accepted() -> None:
    validation.json_object(nested(32), "data", max_bytes=10_000, max_depth=32)


def test_depth_over_the_limit_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="33 levels") as caught:
        validation.json_object(nested(33), "data", max_bytes=10_000, max_depth=32)
    assert type(caught.value) is InvalidArgument
    assert caught.value.metadata == {"field": "data"}


def test_lists_count_towards_depth() -> None:
    value: dict[str, Any] = {"k": [[["deep"]]]}  # object, list, list, list: 4 levels
    validation.json_object(value, "data", max_bytes=1000, max_depth=4)
    with pytest.raises(InvalidArgument):
        validation.json_object(value, "data", max_bytes=1000, max_depth=3)


def test_size_at_the_limit_is_accepted() -> None:
    value = {"k": "x" * 10}  # {"k":"xxxxxxxxxx"} is 18 bytes
    validation.json_object(value, "data", max_bytes=18, max_depth=4)


def test_size_over_the_limit_is_refused() -> None:
    value = {"k": "x" * 10}
    with pytest.raises(DataTooLarge) as caught:
        validation.json_object(value, "options", max_bytes=17, max_depth=4)
    assert caught.value.metadata == {"field": "options", "limit": "17"}
    assert "18 bytes" in caught.value.message


def test_size_counts_utf8_bytes_not_characters() -> None:
    value = {"k": "é" * 10}  # 10 characters, 20 bytes: 28 bytes in all
    validation.json_object(value, "data", max_bytes=28, max_depth=4)
    with pytest.raises(DataTooLarge):
        validation.json_object(value, "data", max_bytes=27, max_depth=4)


def test_depth_is_checked_before_size() -> None:
    # A deep body gets the depth error and never reaches the recursive canonical encoder.
    with pytest.raises(InvalidArgument) as caught:
        validation.json_object(nested(50), "data", max_bytes=10, max_depth=32)
    assert type(caught.value) is InvalidArgument


@pytest.mark.parametrize("number", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_numbers_are_refused(number: float) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.json_object({"k": [number]}, "data", max_bytes=1000, max_depth=4)
    assert type(caught.value) is InvalidArgument
    assert caught.value.metadata == {"field": "data"}


def test_non_json_values_are_refused() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.json_object({"k": object()}, "data", max_bytes=1000, max_depth=4)
    assert caught.value.metadata == {"field": "data"}


# session_name


@pytest.mark.parametrize("value", ["", "a", "brave-otter", "run_2024.05.01", "0", "A" * 64, "a.b-c_d"])
def test_good_session_names_are_accepted(value: str) -> None:
    assert validation.session_name(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "-leading-dash",
        ".hidden",
        "_under",
        "A" * 65,
        "has space",
        "slash/in/it",
        "..",
        "dollar$",
        "ünïcode",
        "tab\tin",
        "trailing-newline\n",
    ],
)
def test_bad_session_names_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.session_name(value)
    assert caught.value.metadata == {"field": "session"}


# idempotency_key


@pytest.mark.parametrize("value", ["", "k", "retry-1:abc/def?x=y", "~" * 200, "!\"#$%&'()*+,-./"])
def test_good_idempotency_keys_are_accepted(value: str) -> None:
    assert validation.idempotency_key(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "has space",
        " leading",
        "trailing ",
        "k" * 201,
        "ünïcode",
        "emoji-\U0001f600",
        "tab\there",
        "nul\x00",
        "del\x7f",
        "trailing-newline\n",
    ],
)
def test_bad_idempotency_keys_are_refused(value: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validation.idempotency_key(value)
    assert caught.value.metadata == {"field": "idempotency_key"}


# text


def test_text_is_returned() -> None:
    assert validation.text("a pipeline", "name") == "a pipeline"


def test_optional_text_may_be_empty() -> None:
    assert validation.text("", "description") == ""


@pytest.mark.parametrize("value", ["", " ", "\t\n"])
def test_required_text_must_not_be_blank(value: str) -> None:
    with pytest.raises(InvalidArgument, match="required") as caught:
        validation.text(value, "name", required=True)
    assert caught.value.metadata == {"field": "name"}


def test_text_length_limit() -> None:
    assert validation.text("x" * validation.MAX_TEXT, "name") == "x" * validation.MAX_TEXT
    with pytest.raises(InvalidArgument) as caught:
        validation.text("x" * (validation.MAX_TEXT + 1), "name")
    assert caught.value.metadata == {"field": "name"}


def test_text_custom_length_limit() -> None:
    validation.text("abcd", "agent", max_length=4)
    with pytest.raises(InvalidArgument, match="longer than 4"):
        validation.text("abcde", "agent", max_length=4)
