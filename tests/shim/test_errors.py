"""What the shim refuses, and that a refusal changes nothing: bad credentials, unknown jobs, bad bodies,
oversized bodies, unresolved ``${STATUS}``, statuses outside the table, and the x-nonce."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipelinejobs_client import JobsClient
from tests.servers import ShimThread
from tests.shim.helpers import (
    agave_params,
    event_names,
    http_client,
    new_job,
    rejected,
    running_job,
    with_settings,
)

AGAVE_URL = "/v1/callbacks/agave"
UNKNOWN_JOB = "deadbeef-0000-5000-8000-00000000abcd"


def error_of(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert (error["status"], error["reason"]) == (status, reason), error
    return error


def unchanged(jobs: JobsClient, job_uuid: str, events: list[str]) -> None:
    assert event_names(jobs, job_uuid) == events, "a refused callback changes nothing"


def test_a_wrong_or_missing_token_is_401(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = running_job(jobs, pipeline)
    wrong = agave_params(created, "FINISHED", token="not-the-token-0123456789")
    error = error_of(http.post(AGAVE_URL, params=wrong), 401, "INVALID_TOKEN")
    assert "not-the-token" not in str(error)
    missing = {"uuid": created.job.uuid, "status": "FINISHED"}
    error_of(http.post(AGAVE_URL, params=missing), 401, "TOKEN_REQUIRED")
    unchanged(jobs, created.job.uuid, ["create", "run"])
    assert rejected(jobs, created.job.uuid) == [], "an unauthenticated caller cannot fill the rejected log"


def test_an_unknown_job_is_401_as_for_a_wrong_token(http: httpx.Client) -> None:
    # Not 404: that would tell anyone which guessed job uuids exist (tests/security/test_oracle.py).
    params = {"uuid": UNKNOWN_JOB, "token": "whatever-token", "status": "RUNNING"}
    error = error_of(http.post(AGAVE_URL, params=params), 401, "INVALID_TOKEN")
    assert error["metadata"] == {"uuid": UNKNOWN_JOB}
    error_of(http.post(AGAVE_URL, params={**params, "status": "NOT_A_STATUS"}), 401, "INVALID_TOKEN")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"uuid": "not-a-uuid", "token": "t", "status": "RUNNING"}, "uuid"),
        ({"uuid": UNKNOWN_JOB.upper(), "token": "t", "status": "RUNNING"}, "uuid"),
        ({"token": "t", "status": "RUNNING"}, "uuid"),
        ({"uuid": UNKNOWN_JOB, "token": "t"}, "status"),
        ({"uuid": UNKNOWN_JOB, "token": "t", "status": "X" * 129}, "status"),
    ],
)
def test_a_malformed_query_is_400(http: httpx.Client, params: dict[str, str], field: str) -> None:
    error = error_of(http.post(AGAVE_URL, params=params), 400, "INVALID_ARGUMENT")
    assert error["metadata"]["field"] == field


def test_an_ambiguous_query_is_400(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = new_job(jobs, pipeline)
    query = f"uuid={created.job.uuid}&token={created.token}&status=RUNNING&status=FAILED"
    error_of(http.post(f"{AGAVE_URL}?{query}"), 400, "INVALID_ARGUMENT")
    unchanged(jobs, created.job.uuid, ["create"])


def test_a_garbage_body_is_kept_as_text(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = running_job(jobs, pipeline)
    garbage = b"\x00\xff<html>not json{{{" + bytes(range(256))
    response = http.post(AGAVE_URL, params=agave_params(created, "HEARTBEAT"), content=garbage)
    assert response.status_code == 200, response.text
    entry = list(jobs.iter_job_events(created.job.uuid))[-1]
    data = dict(entry.data)
    assert data["status"] == "HEARTBEAT"
    assert data["body"] == garbage.decode("utf-8", errors="replace")

    listed = http.post(AGAVE_URL, params=agave_params(created, "PAUSED"), json=[1, "two", None])
    assert listed.status_code == 200
    assert list(jobs.iter_job_events(created.job.uuid))[-1].data["body"] == [1, "two", None]


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,  # past Python's recursion limit
        b'{"a":' * 60 + b"1" + b"}" * 60,  # past what protobuf can decode
        b'{"big": 1' + b"0" * 400 + b"}",  # an integer no float can hold
        b'{"bad": "\\ud800"}',  # a lone surrogate
    ],
    ids=["recursion", "depth", "huge-int", "surrogate"],
)
def test_json_no_event_can_carry_is_400(
    http: httpx.Client, jobs: JobsClient, pipeline: str, body: bytes
) -> None:
    created = running_job(jobs, pipeline)
    error = error_of(
        http.post(AGAVE_URL, params=agave_params(created, "HEARTBEAT"), content=body), 400, "MALFORMED_BODY"
    )
    assert error["metadata"]["field"] == "body"
    unchanged(jobs, created.job.uuid, ["create", "run"])


def test_data_over_the_servers_limit_is_413(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = running_job(jobs, pipeline)
    body = {"log": "x" * (100 * 1024)}  # under the shim's 1 MiB, over the server's 64 KiB per event
    error = error_of(
        http.post(AGAVE_URL, params=agave_params(created, "HEARTBEAT"), json=body), 413, "DATA_TOO_LARGE"
    )
    assert error["metadata"]["field"] == "data"
    unchanged(jobs, created.job.uuid, ["create", "run"])


def _chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    for _ in range(total // size):
        yield b"x" * size


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_10_mb_body_is_413_before_it_is_read(
    http: httpx.Client, jobs: JobsClient, pipeline: str, declared: bool
) -> None:
    created = running_job(jobs, pipeline)
    params = agave_params(created, "HEARTBEAT")
    ten_mb = 10 * 1024 * 1024
    content: bytes | Iterator[bytes] = b"x" * ten_mb if declared else _chunks(ten_mb)
    error = error_of(http.post(AGAVE_URL, params=params, content=content), 413, "BODY_TOO_LARGE")
    assert error["metadata"]["limit"] == str(1024 * 1024)
    unchanged(jobs, created.job.uuid, ["create", "run"])


def test_an_unresolved_placeholder_is_400_and_recorded(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    # The URL exactly as the server hands it out: the executor never substituted ${STATUS}.
    query = created.callback_url.partition("?")[2]
    assert query.endswith("&status=${STATUS}")
    error = error_of(
        http.post(f"{AGAVE_URL}?{query}", json={"id": "agave-job"}), 400, "UNRESOLVED_PLACEHOLDER"
    )
    assert error["metadata"] == {"field": "status", "recorded": "true"}
    assert "${STATUS}" in error["message"]
    unchanged(jobs, created.job.uuid, ["create", "run"])
    [record] = rejected(jobs, created.job.uuid)
    assert (record.event, record.reason) == ("${STATUS}", "UNRESOLVED_PLACEHOLDER")
    assert dict(record.data) == {"id": "agave-job"}


@pytest.mark.parametrize("status", ["$STATUS", "${JOB_STATUS}", "{STATUS}", "$"])
def test_every_form_of_an_unresolved_placeholder_is_400(
    http: httpx.Client, jobs: JobsClient, pipeline: str, status: str
) -> None:
    # `curl "$URL"` with the URL as the server hands it out sends `$STATUS`: curl's URL globbing reads
    # `{STATUS}` as a set of one. That is the same broken job definition as `${STATUS}`, not a status.
    created = running_job(jobs, pipeline)
    response = http.post(AGAVE_URL, params=agave_params(created, status))
    error = error_of(response, 400, "UNRESOLVED_PLACEHOLDER")
    assert status in error["message"]
    assert ("curl" in error["message"]) == ("{" not in status)
    unchanged(jobs, created.job.uuid, ["create", "run"])
    [record] = rejected(jobs, created.job.uuid)
    assert (record.event, record.reason) == (status, "UNRESOLVED_PLACEHOLDER")


@pytest.mark.parametrize("status", ["SUSPENDED", "finished", "CREATED", "<script>"])
def test_a_status_outside_the_table_is_recorded_not_guessed(
    http: httpx.Client, jobs: JobsClient, pipeline: str, status: str
) -> None:
    created = running_job(jobs, pipeline)
    response = http.post(AGAVE_URL, params=agave_params(created, status))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["outcome"], answer["applied"], answer["event"]) == ("unmapped", False, None)
    assert (answer["reason"], answer["state"], answer["status"]) == ("UNMAPPED_STATUS", "RUNNING", status)
    unchanged(jobs, created.job.uuid, ["create", "run"])
    [record] = rejected(jobs, created.job.uuid)
    assert (record.event, record.reason) == (status, "UNMAPPED_STATUS")


@pytest.fixture(scope="module")
def nonce_shim(shim: ShimThread) -> Iterator[ShimThread]:
    guarded = with_settings(shim, callback_nonce="SD2E_XqsfKLFd3nrN")
    yield guarded
    guarded.stop()


def test_the_nonce_when_configured_is_required_and_never_replaces_the_token(
    nonce_shim: ShimThread, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    with http_client(nonce_shim.url) as http:
        params = agave_params(created, "HEARTBEAT")
        error_of(http.post(AGAVE_URL, params=params), 403, "INVALID_NONCE")
        wrong = http.post(AGAVE_URL, params={**params, "x-nonce": "SD2E_wrong"})
        assert "SD2E_wrong" not in error_of(wrong, 403, "INVALID_NONCE")["message"]
        bad_token = {**params, "x-nonce": "SD2E_XqsfKLFd3nrN", "token": "wrong-token-abcdef"}
        error_of(http.post(AGAVE_URL, params=bad_token), 401, "INVALID_TOKEN")
        unchanged(jobs, created.job.uuid, ["create", "run"])

        ok = http.post(AGAVE_URL, params={**params, "x-nonce": "SD2E_XqsfKLFd3nrN"})
        assert ok.status_code == 200, ok.text
        header = http.post(
            AGAVE_URL, params=agave_params(created, "PAUSED"), headers={"X-Nonce": "SD2E_XqsfKLFd3nrN"}
        )
        assert header.status_code == 200, header.text
    unchanged(jobs, created.job.uuid, ["create", "run", "update", "update"])


def test_without_a_configured_nonce_a_sent_one_is_ignored(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    params = agave_params(created, "HEARTBEAT", **{"x-nonce": "SD2E_XqsfKLFd3nrN"})
    assert http.post(AGAVE_URL, params=params).status_code == 200


def test_a_head_request_changes_nothing(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = new_job(jobs, pipeline)
    assert http.head(AGAVE_URL, params=agave_params(created, "RUNNING")).status_code == 405
    unchanged(jobs, created.job.uuid, ["create"])


def test_routing_errors_are_json(http: httpx.Client) -> None:
    error_of(http.get("/v1/nowhere"), 404, "NOT_FOUND")
    error_of(http.delete(AGAVE_URL), 405, "METHOD_NOT_ALLOWED")
    error_of(http.get("/v1/events"), 405, "METHOD_NOT_ALLOWED")
