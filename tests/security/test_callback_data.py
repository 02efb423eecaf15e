"""F15: a callback body that quotes the job's token (Agave's job JSON repeats its notification URL) does
not write the token into the history or the rejected-events log, which every client key may read.

A real shim in front of a real server; what was stored is read back through the API.
"""

from __future__ import annotations

import json

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_client.views import history_event
from tests.servers import ShimThread
from tests.shim.helpers import agave_params, history, http_client, rejected, running_job


def agave_job_json(
    created: job_service_pb2.CreateJobResponse, shim_url: str, status: str
) -> dict[str, object]:
    """The shape of the seed's Agave job definition, as Agave posts it back: its notification URL
    carries the job's token."""
    url = f"{shim_url}/actors/v2/G56vjoAVzGkkq/messages?token={created.token}&uuid={created.job.uuid}"
    return {
        "id": "6583653933928541720-242ac113-0001-007",
        "status": status,
        "notifications": [{"url": f"{url}&status=${{STATUS}}", "event": "*", "persistent": True}],
        "inputs": {"file": [f"agave://data/{created.token}/note.txt"]},
        created.token: "a key that is the token",
    }


def test_a_token_quoted_in_a_callback_body_is_not_stored(
    shim: ShimThread, shim_jobs: JobsClient, shim_pipeline: str
) -> None:
    """F15: the body became the event's data verbatim, token and all."""
    created = running_job(shim_jobs, shim_pipeline)
    with http_client(shim.url) as http:
        for status in ("RUNNING", "NOT_A_STATUS"):  # applied, and kept in the rejected-events log
            body = agave_job_json(created, shim.url, status)
            answer = http.post("/v1/callbacks/agave", params=agave_params(created, status), json=body)
            assert answer.status_code == 200, answer.text
        tapis = {"type": "jobs.JOB_NEW_STATUS.QUEUED", "data": json.dumps({"token": created.token})}
        answer = http.post("/v1/callbacks/tapis", params=agave_params(created, ""), json=tapis)
        assert answer.status_code == 200, answer.text
        message = {
            "uuid": created.job.uuid,
            "event": "update",
            "token": created.token,
            "data": {"t": created.token},
        }
        assert http.post("/v1/events", json=message).status_code == 200
    entries = [history_event(entry) for entry in history(shim_jobs, created.job.uuid)]
    stored = json.dumps([entry["data"] for entry in entries]) + repr(rejected(shim_jobs, created.job.uuid))
    assert created.token not in stored
    assert f"token=REDACTED&uuid={created.job.uuid}" in stored, "the rest of the data is kept"
    assert entries[-1]["data"] == {"t": "REDACTED"}
