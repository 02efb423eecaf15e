"""F9: a caller with no API key could tell an existing job from an unknown one (NOT_FOUND vs
INVALID_TOKEN) on the token-only paths, and job uuids are uuid5 of guessable inputs. Now SendEvent,
CancelJob, RejectEvent and the shim's endpoints answer an unknown job exactly as a wrong token; callers
with an API key (who may read every job anyway) still get NOT_FOUND."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.shim import ShimSettings
from tests.servers import ServerThread, ShimThread
from tests.shim.helpers import http_client, new_job
from tests.support import CALLBACK_KEY_SECRET, CLIENT_KEY, Stubs, error_info, stubs

WRONG = "a-wrong-token-0123456789abcdef"
Metadata = tuple[tuple[str, str], ...]
Answer = tuple[Any, ...]


@pytest.fixture(scope="module")
def grpc_api(shim_server: ServerThread) -> Iterator[Stubs]:
    with stubs(shim_server.address) as s:
        yield s


def grpc_answer(call: Callable[[], object], job_uuid: str) -> Answer:
    """What the caller learns from a refusal: code, reason, message and metadata (the uuid it sent aside)."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    info = error_info(error)
    details = (error.details() or "").replace(job_uuid, "<uuid>")
    metadata = {key: value.replace(job_uuid, "<uuid>") for key, value in info.metadata.items()}
    return error.code(), info.reason, details, metadata


def token_only_calls(
    api: Stubs, job_uuid: str, token: str, metadata: Metadata
) -> dict[str, Callable[[], object]]:
    send = job_service_pb2.SendEventRequest(uuid=job_uuid, event=job_pb2.JOB_EVENT_RUN, token=token)
    # reset needs an admin key: the token is still checked first, so this answers as the others do.
    reset = job_service_pb2.SendEventRequest(uuid=job_uuid, event=job_pb2.JOB_EVENT_RESET, token=token)
    cancel = job_service_pb2.CancelJobRequest(uuid=job_uuid, token=token)
    reject = job_service_pb2.RejectEventRequest(
        uuid=job_uuid, token=token, event="SUSPENDED", reason="UNMAPPED"
    )
    return {
        "SendEvent run": lambda: api.jobs.SendEvent(send, metadata=metadata),
        "SendEvent reset": lambda: api.jobs.SendEvent(reset, metadata=metadata),
        "CancelJob": lambda: api.jobs.CancelJob(cancel, metadata=metadata),
        "RejectEvent": lambda: api.jobs.RejectEvent(reject, metadata=metadata),
    }


@pytest.mark.parametrize("token", [WRONG, ""], ids=["wrong token", "no token"])
def test_without_an_api_key_an_unknown_job_answers_as_a_wrong_token(
    grpc_api: Stubs, shim_jobs: JobsClient, shim_pipeline: str, token: str
) -> None:
    """F9: on every token-only RPC, an unknown job and an existing one give the same answer."""
    existing = new_job(shim_jobs, shim_pipeline).job.uuid
    unknown = str(uuid.uuid4())
    real = token_only_calls(grpc_api, existing, token, ())
    guessed = token_only_calls(grpc_api, unknown, token, ())
    for name, call in real.items():
        answer = grpc_answer(call, existing)
        assert answer[0] == grpc.StatusCode.UNAUTHENTICATED, (name, answer)
        assert answer[1] == ("INVALID_TOKEN" if token else "TOKEN_REQUIRED"), (name, answer)
        assert grpc_answer(guessed[name], unknown) == answer, name


def shim_answer(http: httpx.Client, job_uuid: str, status: str, path: str = "/v1/callbacks/agave") -> Answer:
    if path == "/v1/events":
        response = http.post(path, json={"uuid": job_uuid, "event": "run", "token": WRONG})
    else:
        response = http.get(path, params={"uuid": job_uuid, "token": WRONG, "status": status})
    text = response.text.replace(job_uuid, "<uuid>")
    return response.status_code, text


@pytest.fixture(scope="module", params=["no key", "client key"])
def shim_url(request: pytest.FixtureRequest, shim: ShimThread, shim_server: ServerThread) -> Iterator[str]:
    """The shim as deployed without a key (``up``) and with a client key of its own."""
    if request.param == "no key":
        yield shim.url
        return
    keyed = ShimThread(
        ShimSettings(server=shim_server.address, api_key=CLIENT_KEY, callback_key_secret=CALLBACK_KEY_SECRET)
    ).start()
    try:
        yield keyed.url
    finally:
        keyed.stop()


@pytest.mark.parametrize(
    ("path", "status"),
    [("/v1/callbacks/agave", "RUNNING"), ("/v1/callbacks/agave", "NOT_A_STATUS"), ("/v1/events", "")],
    ids=["mapped status", "unmapped status", "event message"],
)
def test_callbacks_answer_an_unknown_job_as_a_wrong_token(
    shim_url: str, shim_jobs: JobsClient, shim_pipeline: str, path: str, status: str
) -> None:
    """F9: the enumeration of the report (404 for a wrong guess, 401 for a real job) no longer works."""
    existing = new_job(shim_jobs, shim_pipeline).job.uuid
    with http_client(shim_url) as http:
        answer = shim_answer(http, existing, status, path)
        assert answer[0] == 401, answer
        assert '"INVALID_TOKEN"' in answer[1], answer
        assert shim_answer(http, str(uuid.uuid4()), status, path) == answer


def test_the_server_log_keeps_the_real_reason(grpc_api: Stubs, caplog: pytest.LogCaptureFixture) -> None:
    """F9: the caller cannot tell, but the operator can: the log says the job does not exist."""
    unknown = str(uuid.uuid4())
    call = token_only_calls(grpc_api, unknown, WRONG, ())["SendEvent run"]
    with caplog.at_level("INFO", logger="pipelinejobs.auth"):
        grpc_answer(call, unknown)
    assert f"job {unknown} not found" in caplog.text
    assert WRONG not in caplog.text
