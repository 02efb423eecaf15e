"""The seed's event messages and URLs: ``POST /v1/events``, the drop-in Abaco endpoint, and the client
library's ``agave_notification()`` end to end."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_client.config import ClientConfig
from pipelinejobs_client.pipelinejob import PipelineJob
from pipelinejobs_server.shim import ShimSettings
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.web.serving import bind, url_for
from tests.servers import ServerThread, ShimThread, start_grpc_server
from tests.shim.helpers import event_names, http_client, new_job, running_job, state
from tests.support import CALLBACK_KEY_SECRET, CLIENT_KEY

NONCE = "SD2E_XqsfKLFd3nrN"
# The seed's notification URL, verbatim; tests replace only the host and the job's own values.
SEED_URL = (
    "https://api.sd2e.org/actors/v2/G56vjoAVzGkkq/messages?x-nonce=SD2E_XqsfKLFd3nrN"
    "&token=940a5adc78720505&uuid=58fa9ec7-6c25-5525-94f3-e853335e2f17&status=${STATUS}"
)


def post_event(
    http: httpx.Client, message: Any, path: str = "/v1/events", expect: int = 200
) -> dict[str, Any]:
    response = http.post(path, json=message)
    assert response.status_code == expect, response.text
    answer: dict[str, Any] = response.json()
    return answer


def test_the_seeds_event_message_moves_a_job(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = new_job(jobs, pipeline)
    uuid_, token = created.job.uuid, created.token
    post_event(http, {"uuid": uuid_, "event": "run", "token": token})
    answer = post_event(http, {"uuid": uuid_, "event": "update", "data": {"key4": "value4"}, "token": token})
    assert (answer["outcome"], answer["event"], answer["state"], answer["status"]) == (
        "applied",
        "update",
        "RUNNING",
        None,
    )
    entry = list(jobs.iter_job_events(uuid_))[-1]
    assert dict(entry.data) == {"key4": "value4"}
    refused = post_event(http, {"uuid": uuid_, "event": "validate", "token": token})
    assert (refused["outcome"], refused["reason"], refused["state"]) == (
        "refused",
        "INVALID_TRANSITION",
        "RUNNING",
    )
    assert event_names(jobs, uuid_) == ["create", "run", "update"]


def test_an_idempotency_key_in_the_message_replays(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    message = {
        "uuid": created.job.uuid,
        "event": "update",
        "token": created.token,
        "idempotency_key": "upd-1",
    }
    assert [post_event(http, message)["outcome"] for _ in range(2)] == ["applied", "replayed"]
    conflict = http.post("/v1/events", json={**message, "data": {"other": True}})
    assert (conflict.status_code, conflict.json()["error"]["reason"]) == (409, "IDEMPOTENCY_CONFLICT")
    assert event_names(jobs, created.job.uuid) == ["create", "run", "update"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event": "RUN"}, "event"),
        ({"event": "explode"}, "event"),
        ({"event": "reset"}, "event"),
        ({"event": "create"}, "event"),
        ({"uuid": "not-a-uuid"}, "uuid"),
        ({"data": ["not", "an", "object"]}, "data"),
        ({"token": 1234567890123456}, "token"),
        ({"extra": 1}, "body"),
    ],
)
def test_an_invalid_message_is_400_and_never_echoes_the_token(
    http: httpx.Client, jobs: JobsClient, pipeline: str, change: dict[str, Any], field: str
) -> None:
    created = running_job(jobs, pipeline)
    message = {"uuid": created.job.uuid, "event": "update", "token": created.token, **change}
    response = http.post("/v1/events", json=message)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["reason"], error["metadata"]["field"]) == ("MALFORMED_BODY", field)
    assert created.token not in response.text
    assert "1234567890123456" not in response.text
    assert event_names(jobs, created.job.uuid) == ["create", "run"]


@pytest.mark.parametrize("body", [b"", b"garbage", b"[]", b'"text"'], ids=["empty", "text", "list", "string"])
def test_a_body_that_is_not_a_json_object_is_400(http: httpx.Client, body: bytes) -> None:
    response = http.post("/v1/events", content=body)
    assert (response.status_code, response.json()["error"]["reason"]) == (400, "MALFORMED_BODY")


def test_a_message_without_a_token_is_401(http: httpx.Client, jobs: JobsClient, pipeline: str) -> None:
    created = new_job(jobs, pipeline)
    response = http.post("/v1/events", json={"uuid": created.job.uuid, "event": "run"})
    assert (response.status_code, response.json()["error"]["reason"]) == (401, "TOKEN_REQUIRED")


def test_the_seeds_notification_url_with_only_the_host_replaced_moves_a_job(
    http: httpx.Client, shim: ShimThread, jobs: JobsClient, pipeline: str
) -> None:
    created = new_job(jobs, pipeline)
    template = (
        SEED_URL.replace("https://api.sd2e.org", shim.url)
        .replace("940a5adc78720505", created.token)
        .replace("58fa9ec7-6c25-5525-94f3-e853335e2f17", created.job.uuid)
    )
    for status in ("PENDING", "QUEUED", "RUNNING", "ARCHIVING", "FINISHED"):
        response = http.post(template.replace("${STATUS}", status), json={"status": status, "id": "agave-1"})
        assert response.json()["outcome"] == "applied", response.text
    assert state(jobs, created.job.uuid) == "FINISHED"
    assert event_names(jobs, created.job.uuid) == ["create", "update", "update", "run", "update", "finish"]


@pytest.mark.parametrize("envelope", ["bare", "abaco-object", "abaco-text"])
def test_the_seeds_reactor_message_to_the_actor_url_moves_a_job(
    http: httpx.Client, jobs: JobsClient, pipeline: str, envelope: str
) -> None:
    created = running_job(jobs, pipeline)
    # rx.send_message('G56vjoAVzGkkq', event_msg) from the seed, with this job's uuid and token.
    event_msg = {
        "uuid": created.job.uuid,
        "event": "update",
        "data": {"key4": "value4"},
        "token": created.token,
    }
    body: Any = {
        "bare": event_msg,
        "abaco-object": {"message": event_msg},
        "abaco-text": {"message": json.dumps(event_msg)},
    }[envelope]
    answer = post_event(http, body, path="/actors/v2/G56vjoAVzGkkq/messages")
    assert (answer["outcome"], answer["event"]) == ("applied", "update")
    assert dict(list(jobs.iter_job_events(created.job.uuid))[-1].data) == {"key4": "value4"}


def test_the_actor_url_refuses_what_is_neither_form(http: httpx.Client) -> None:
    response = http.post("/actors/v2/G56vjoAVzGkkq/messages", content=b"hello")
    assert (response.status_code, response.json()["error"]["reason"]) == (400, "MALFORMED_BODY")
    response = http.post("/actors/v2/G56vjoAVzGkkq/messages", json={"message": "{not json"})
    assert (response.status_code, response.json()["error"]["metadata"]["field"]) == (400, "message")


@pytest.fixture(scope="module")
def linked(embedded: EmbeddedDatabase) -> Iterator[tuple[ServerThread, ShimThread]]:
    """A server whose callback URLs point at this shim (as under ``pipelinejobs up``), with a nonce."""
    sock = bind("127.0.0.1", 0)
    public_url = url_for("127.0.0.1", sock.getsockname()[1])
    server = start_grpc_server(embedded, public_url=public_url)
    shim = ShimThread(
        ShimSettings(server=server.address, callback_key_secret=CALLBACK_KEY_SECRET, callback_nonce=NONCE),
        sock,
    ).start()
    yield server, shim
    shim.stop()
    server.stop()


def test_agave_notification_from_the_client_library_moves_the_job(
    linked: tuple[ServerThread, ShimThread],
) -> None:
    server, shim = linked
    config = ClientConfig(server=server.address, api_key=CLIENT_KEY, updates_nonce=NONCE)
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
        job = PipelineJob(
            None,
            "UW_BIOFAB",
            "Yeast-Gates",
            "sample.uw_biofab.133737/A2",
            {"run": uuid.uuid4().hex},
            pipeline_uuid=pipeline,
            config=config,
            client=client,
        ).setup()
        notification = job.agave_notification()
        assert (notification["event"], notification["persistent"]) == ("*", False)
        url = str(notification["url"])
        assert url.startswith(f"{shim.url}/v1/callbacks/agave?x-nonce={NONCE}&")
        assert url.endswith("&status=${STATUS}")
        with http_client() as http:
            for status in ("PENDING", "RUNNING", "HEARTBEAT", "FINISHED"):
                response = http.post(url.replace("${STATUS}", status), json={"status": status})
                assert response.status_code == 200, response.text
            assert http.post(url.replace(f"x-nonce={NONCE}&", "")).status_code == 403
        assert job.status == "FINISHED"
        assert [next(iter(entry)) for entry in job.history] == ["CREATE", "UPDATE", "RUN", "UPDATE", "FINISH"]
