"""Agave v2 callbacks through real HTTP to a real shim, a real gRPC server and the embedded database."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.names import state_name
from pipelinejobs_server.domain import fsm
from pipelinejobs_server.shim.statuses import AGAVE
from tests.shim.helpers import (
    agave_params,
    event_names,
    history,
    new_job,
    rejected,
    running_job,
    state,
)

AGAVE_URL = "/v1/callbacks/agave"


def agave_job(job_uuid: str, status: str, **changes: Any) -> dict[str, Any]:
    """An Agave v2 job JSON as Agave posts it with a notification (trimmed)."""
    return {
        "id": "6874237679603805720-242ac11b-0001-007",
        "name": "fcs-etl-job",
        "owner": "sd2eadm",
        "appId": "fcs-etl-0.4.0u2",
        "executionSystem": "hpc-tacc-jetstream",
        "archive": True,
        "archivePath": f"/products/v1/{job_uuid}",
        "status": status,
        "lastUpdated": "2018-06-11T12:46:02.000-05:00",
        **changes,
    }


def callback(
    http: httpx.Client, params: dict[str, str], body: Any = None, *, method: str = "POST", expect: int = 200
) -> dict[str, Any]:
    if method == "GET":
        response = http.get(AGAVE_URL, params=params)
    elif isinstance(body, bytes):
        response = http.post(AGAVE_URL, params=params, content=body)
    else:
        response = http.post(AGAVE_URL, params=params, json=body)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_a_realistic_agave_sequence_finishes_the_job(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = new_job(jobs, pipeline)
    uuid = created.job.uuid
    sequence = [
        ("PENDING", "GET", None),
        ("PROCESSING_INPUTS", "POST", agave_job(uuid, "PROCESSING_INPUTS")),
        ("STAGING_INPUTS", "POST", agave_job(uuid, "STAGING_INPUTS")),
        ("STAGED", "GET", None),
        ("STAGING_JOB", "POST", agave_job(uuid, "STAGING_JOB")),
        ("SUBMITTING", "POST", agave_job(uuid, "SUBMITTING")),
        ("QUEUED", "POST", agave_job(uuid, "QUEUED")),
        ("RUNNING", "POST", agave_job(uuid, "RUNNING")),
        ("HEARTBEAT", "POST", agave_job(uuid, "HEARTBEAT", lastUpdated="2018-06-11T12:40:00.000-05:00")),
        ("HEARTBEAT", "POST", agave_job(uuid, "HEARTBEAT", lastUpdated="2018-06-11T12:45:00.000-05:00")),
        ("CLEANING_UP", "POST", agave_job(uuid, "CLEANING_UP")),
        ("ARCHIVING", "POST", agave_job(uuid, "ARCHIVING")),
        ("ARCHIVING_FINISHED", "POST", agave_job(uuid, "ARCHIVING_FINISHED")),
        ("FINISHED", "POST", agave_job(uuid, "FINISHED")),
    ]
    for status, method, body in sequence:
        answer = callback(http, agave_params(created, status), body, method=method)
        assert answer["applied"] is True, answer
        assert (answer["uuid"], answer["status"], answer["event"]) == (uuid, status, AGAVE[status].event)
        assert answer["reason"] is None

    entries = history(jobs, uuid)
    assert [e.seq for e in entries] == list(range(1, len(sequence) + 2)), "one entry per applied status"
    assert event_names(jobs, uuid) == ["create", *(AGAVE[status].event for status, _, _ in sequence)]
    assert state(jobs, uuid) == "FINISHED"
    assert answer["state"] == "FINISHED"
    for entry, (status, method, body) in zip(entries[1:], sequence, strict=True):
        assert entry.source == job_pb2.EVENT_SOURCE_CALLBACK
        assert entry.idempotency_key.startswith(f"agave:{status}:")
        data = dict(entry.data)
        assert data == ({"status": status} if method == "GET" else body)
    assert jobs.verify_history(uuid).valid
    assert rejected(jobs, uuid) == []


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_the_same_callback_three_times_is_applied_once(
    http: httpx.Client, jobs: JobsClient, pipeline: str, method: str
) -> None:
    created = new_job(jobs, pipeline)
    body = agave_job(created.job.uuid, "RUNNING") if method == "POST" else None
    answers = [callback(http, agave_params(created, "RUNNING"), body, method=method) for _ in range(3)]

    assert [a["outcome"] for a in answers] == ["applied", "replayed", "replayed"]
    assert [a["applied"] for a in answers] == [True, False, False]
    assert {a["seq"] for a in answers} == {2}, "a replay names the entry it repeats"
    assert answers[1]["reason"] == "DUPLICATE"
    assert event_names(jobs, created.job.uuid) == ["create", "run"]
    # The server keeps late duplicates in the rejected log, so operators see what arrived twice.
    assert [r.reason for r in rejected(jobs, created.job.uuid)] == ["DUPLICATE", "DUPLICATE"]

    # A different body is a different delivery: RUNNING again is legal, and applied.
    if method == "POST":
        again = agave_job(created.job.uuid, "RUNNING", lastUpdated="later")
        assert callback(http, agave_params(created, "RUNNING"), again)["outcome"] == "applied"
        assert event_names(jobs, created.job.uuid) == ["create", "run", "run"]


def test_callbacks_after_finished_are_answered_2xx_and_listed_as_rejected(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    uuid = created.job.uuid
    callback(http, agave_params(created, "FINISHED"), agave_job(uuid, "FINISHED"))
    late = ["HEARTBEAT", "RUNNING", "KILLED", "ARCHIVING_FAILED"]
    for status in late:
        answer = callback(http, agave_params(created, status), agave_job(uuid, status))
        assert answer["outcome"] == "refused", answer
        assert answer["applied"] is False
        assert (answer["state"], answer["reason"]) == ("FINISHED", "INVALID_TRANSITION")
        assert "FINISHED" in answer["message"]
    assert state(jobs, uuid) == "FINISHED"
    assert event_names(jobs, uuid) == ["create", "run", "finish"]
    records = rejected(jobs, uuid)
    assert [(r.event, r.reason, state_name(r.state)) for r in records] == [
        (AGAVE[status].event, "INVALID_TRANSITION", "FINISHED") for status in late
    ]
    assert all(r.source == job_pb2.EVENT_SOURCE_CALLBACK for r in records)
    assert dict(records[0].data)["status"] == "HEARTBEAT", "the executor's payload is kept with it"


@pytest.mark.parametrize("status", list(AGAVE))
def test_every_agave_status_sends_its_event(
    http: httpx.Client, jobs: JobsClient, pipeline: str, status: str
) -> None:
    created = running_job(jobs, pipeline)
    rule = AGAVE[status]
    answer = callback(http, agave_params(created, status), agave_job(created.job.uuid, status))
    expected = fsm.decide("RUNNING", rule.event)
    assert expected.accepted, "every Agave status is legal while the job runs"
    assert (answer["outcome"], answer["event"], answer["state"]) == ("applied", rule.event, expected.to_state)
    assert event_names(jobs, created.job.uuid) == ["create", "run", rule.event]
    assert state(jobs, created.job.uuid) == expected.to_state


def test_killed_and_stopped_end_the_job(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    for status in ("KILLED", "STOPPED"):
        created = running_job(jobs, pipeline)
        callback(http, agave_params(created, status), method="GET")
        assert state(jobs, created.job.uuid) == "FAILED", status
