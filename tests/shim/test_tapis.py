"""Tapis v3 notifications through real HTTP: every row of the table, retries, and bad notifications."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_server.domain import fsm
from pipelinejobs_server.shim.statuses import TAPIS
from tests.shim.helpers import event_names, new_job, rejected, running_job, state

TAPIS_URL = "/v1/callbacks/tapis"


def notification(status: str, previous: str = "QUEUED", kind: str = "JOB_NEW_STATUS") -> dict[str, Any]:
    """A Tapis v3 job notification (CloudEvents-shaped; ``data`` is JSON text, as Tapis sends it)."""
    return {
        "source": "https://tacc.tapis.io/jobs",
        "type": f"jobs.{kind}.{status}",
        "subject": "3b8c5e9a-4b9e-4c1a-9c43-2d9e0f1b7a61-007",
        "seriesId": "3b8c5e9a-4b9e-4c1a-9c43-2d9e0f1b7a61-007",
        "timestamp": "2024-02-01T12:00:00.000Z",
        "data": json.dumps({"newJobStatus": status, "oldJobStatus": previous, "jobName": "fcs-etl"}),
        "tenant": "tacc",
        "user": "sd2eadm",
    }


def params(created: Any) -> dict[str, str]:
    return {"uuid": created.job.uuid, "token": created.token}


@pytest.mark.parametrize("status", list(TAPIS))
def test_every_tapis_status_sends_its_event(
    http: httpx.Client, jobs: JobsClient, pipeline: str, status: str
) -> None:
    created = running_job(jobs, pipeline)
    rule = TAPIS[status]
    response = http.post(TAPIS_URL, params=params(created), json=notification(status))
    assert response.status_code == 200, response.text
    answer = response.json()
    expected = fsm.decide("RUNNING", rule.event)
    assert (answer["outcome"], answer["status"], answer["event"]) == ("applied", status, rule.event)
    assert answer["state"] == expected.to_state == state(jobs, created.job.uuid)
    entry = list(jobs.iter_job_events(created.job.uuid))[-1]
    assert entry.data["type"] == f"jobs.JOB_NEW_STATUS.{status}", "the notification is the event's data"


def test_a_tapis_life_cycle_and_its_retries(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = new_job(jobs, pipeline)
    for status in ("PENDING", "STAGING_INPUTS", "QUEUED", "RUNNING", "ARCHIVING", "FINISHED"):
        body = json.dumps(notification(status)).encode()
        first, retry = (http.post(TAPIS_URL, params=params(created), content=body) for _ in range(2))
        assert first.json()["outcome"] == "applied"
        assert retry.json()["outcome"] == "replayed", "the same notification, delivered again"
    assert event_names(jobs, created.job.uuid) == [
        "create",
        "update",
        "update",
        "update",
        "run",
        "update",
        "finish",
    ]
    assert state(jobs, created.job.uuid) == "FINISHED"


def test_other_tapis_event_types_are_recorded_not_guessed(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    for body in (notification("RUNNING", kind="JOB_USER_EVENT"), notification("SUSPENDED")):
        answer = http.post(TAPIS_URL, params=params(created), json=body).json()
        assert (answer["outcome"], answer["reason"]) == ("unmapped", "UNMAPPED_STATUS")
    assert [r.event for r in rejected(jobs, created.job.uuid)] == ["jobs.JOB_USER_EVENT.RUNNING", "SUSPENDED"]
    assert event_names(jobs, created.job.uuid) == ["create", "run"]


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"[1, 2]", json.dumps({"source": "x"}).encode(), json.dumps({"type": 7}).encode()],
    ids=["empty", "text", "list", "no-type", "number-type"],
)
def test_a_malformed_notification_is_400(
    http: httpx.Client, jobs: JobsClient, pipeline: str, body: bytes
) -> None:
    created = running_job(jobs, pipeline)
    response = http.post(TAPIS_URL, params=params(created), content=body)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["reason"] in ("MALFORMED_BODY", "INVALID_ARGUMENT")
    assert event_names(jobs, created.job.uuid) == ["create", "run"]
