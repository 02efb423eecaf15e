"""Page tokens and page sizes (service/paging.py): round trips, tokens of other listings, garbage."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.service import paging
from pipelinejobs_server.settings import Limits

JOB_UUID = "0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11"
LIMITS = Limits(default_page_size=100, max_page_size=1000)


def raw_token(document: Any) -> str:
    """A token built by hand, as a client that forges or mangles one would."""
    return base64.urlsafe_b64encode(json.dumps(document).encode("utf-8")).decode("ascii").rstrip("=")


@pytest.mark.parametrize(
    "position",
    [
        {"seq": 0},
        {"seq": 41},
        {"t": "2024-05-01T12:00:00+00:00", "id": JOB_UUID},
        {"nested": {"list": [1, 2, 3]}, "text": "ünïcödé"},
    ],
)
def test_round_trip(position: dict[str, Any]) -> None:
    token = paging.encode("jobs", position)
    assert paging.decode("jobs", token) == position


def test_token_is_url_safe_without_padding() -> None:
    for seq in range(50):
        token = paging.encode(f"events:{JOB_UUID}", {"seq": seq})
        assert "=" not in token
        assert set(token) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_encoding_is_deterministic() -> None:
    assert paging.encode("jobs", {"b": 1, "a": 2}) == paging.encode("jobs", {"a": 2, "b": 1})


def test_empty_token_is_the_first_page() -> None:
    assert paging.decode("jobs", "") is None
    assert paging.decode_moment("jobs", "") is None


@pytest.mark.parametrize(
    ("issued_for", "presented_to"),
    [
        ("jobs", "pipelines"),
        (f"events:{JOB_UUID}", "events:11111111-2222-5333-8444-555555555555"),
        (f"rejected:{JOB_UUID}", f"events:{JOB_UUID}"),
    ],
)
def test_token_of_another_listing_is_refused(issued_for: str, presented_to: str) -> None:
    token = paging.encode(issued_for, {"seq": 3})
    with pytest.raises(InvalidArgument) as caught:
        paging.decode(presented_to, token)
    assert caught.value.metadata == {"field": "page_token"}


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "!!!!",
        "%%%%%%%%",
        "é",
        "a",
        base64.urlsafe_b64encode(b"\xff\xfe\x00\x81").decode("ascii"),  # not UTF-8 / not JSON
        base64.urlsafe_b64encode(b"not json").decode("ascii"),
        raw_token([1, 2, 3]),  # JSON, but not an object
        raw_token("jobs"),
        raw_token(None),
        raw_token({"p": {"seq": 1}}),  # no listing
        raw_token({"l": "jobs"}),  # no position
        raw_token({"l": "jobs", "p": [1]}),  # position not an object
        raw_token({"l": "jobs", "p": None}),
    ],
)
def test_garbage_is_refused(token: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.decode("jobs", token)
    assert caught.value.metadata == {"field": "page_token"}


def test_deeply_nested_garbage_is_refused() -> None:
    # A client-supplied token must never turn into an internal error, however it is built.
    token = base64.urlsafe_b64encode(b"[" * 100_000).decode("ascii")
    with pytest.raises(InvalidArgument) as caught:
        paging.decode("jobs", token)
    assert caught.value.metadata == {"field": "page_token"}


def test_page_size_default() -> None:
    assert paging.page_size(0, LIMITS) == 100


@pytest.mark.parametrize("requested", [1, 7, 100, 999, 1000])
def test_page_size_as_requested(requested: int) -> None:
    assert paging.page_size(requested, LIMITS) == requested


@pytest.mark.parametrize("requested", [1001, 5000, 2**31 - 1])
def test_page_size_is_capped(requested: int) -> None:
    assert paging.page_size(requested, LIMITS) == 1000


def test_page_size_default_is_capped_too() -> None:
    assert paging.page_size(0, Limits(default_page_size=500, max_page_size=50)) == 50


@pytest.mark.parametrize("requested", [-1, -1000, -(2**31)])
def test_negative_page_size_is_refused(requested: int) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.page_size(requested, LIMITS)
    assert caught.value.metadata == {"field": "page_size"}


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 123000, tzinfo=UTC),
        datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-7))),
        datetime(2030, 1, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    ],
)
def test_moment_round_trip(moment: datetime) -> None:
    token = paging.encode_moment("pipelines", moment, JOB_UUID)
    decoded = paging.decode_moment("pipelines", token)
    assert decoded is not None
    when, uuid = decoded
    assert when == moment
    assert when.utcoffset() == moment.utcoffset()
    assert when.tzinfo is not None
    assert uuid == JOB_UUID


def test_moment_token_of_another_listing_is_refused() -> None:
    token = paging.encode_moment("pipelines", datetime(2024, 5, 1, tzinfo=UTC), JOB_UUID)
    with pytest.raises(InvalidArgument) as caught:
        paging.decode_moment(f"rejected:{JOB_UUID}", token)
    assert caught.value.metadata == {"field": "page_token"}


@pytest.mark.parametrize(
    "position",
    [
        {"seq": 3},  # a position of another shape
        {"t": "2024-05-01T12:00:00+00:00"},  # no id
        {"id": JOB_UUID},  # no time
        {"t": "yesterday", "id": JOB_UUID},
        {"t": 1714564800, "id": JOB_UUID},
        {"t": None, "id": JOB_UUID},
        {"t": "2024-05-01T12:00:00", "id": JOB_UUID},  # no zone
        {"t": "1969-12-31T23:59:59+00:00", "id": JOB_UUID},  # before any time this service writes
        {"t": "0001-01-01T00:00:00+23:59", "id": JOB_UUID},  # before year 1 in UTC
        {"t": "9999-12-31T23:59:59-00:01", "id": JOB_UUID},  # after year 9999 in UTC
        {"t": "2024-05-01T12:00:00+00:00", "id": 7},  # an id that is not text
    ],
)
def test_malformed_moment_is_refused(position: dict[str, Any]) -> None:
    token = paging.encode("pipelines", position)
    with pytest.raises(InvalidArgument) as caught:
        paging.decode_moment("pipelines", token)
    assert caught.value.metadata == {"field": "page_token"}


@pytest.mark.parametrize("seq", [0, 1, 2**63 - 1])
def test_seq_round_trip(seq: int) -> None:
    assert paging.decode_seq("events", paging.encode_seq("events", seq)) == seq


@pytest.mark.parametrize("seq", [-1, 2**63, 2**70, True, 1.5, "3", None])
def test_seq_out_of_range_is_refused(seq: object) -> None:
    with pytest.raises(InvalidArgument) as caught:
        paging.decode_seq("events", paging.encode("events", {"seq": seq}))
    assert caught.value.metadata == {"field": "page_token"}
