"""Tokens and API keys never appear in the server's logs, whatever the outcome of a call."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_service_pb2
from pipelinejobs_server.logs import JsonFormatter
from tests.support import ADMIN_KEY, CLIENT, CLIENT_KEY, Stubs, create_job, register_pipeline, send


def test_no_secret_reaches_the_logs(api: Stubs, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    created = create_job(api, register_pipeline(api), {"test": "logging"})
    send(api, created.job.uuid, "run", token=created.token)
    wrong_token = created.token[::-1]
    with pytest.raises(grpc.RpcError):
        send(api, created.job.uuid, "update", token=wrong_token)
    with pytest.raises(grpc.RpcError):
        send(api, created.job.uuid, "create", token=created.token)  # refused by the FSM
    with pytest.raises(grpc.RpcError):
        send(api, created.job.uuid, "update", metadata=(("authorization", "Bearer not-a-key"),))
    assert any("SendEvent" in record.getMessage() for record in caplog.records), "the calls were logged"
    text = "\n".join(record.getMessage() for record in caplog.records)
    for secret in (created.token, wrong_token, CLIENT_KEY, ADMIN_KEY, "not-a-key"):
        assert secret not in text


def request_id_of(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "x-request-id":
            return str(value)
    return ""


def test_every_call_carries_a_request_id_into_its_logs_and_back_to_the_caller(
    api: Stubs, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pipeline = register_pipeline(api)
    request = job_service_pb2.GetJobRequest(uuid="bd43b784-a931-5b44-9564-51b1e3d7e442")
    with pytest.raises(grpc.RpcError) as caught:
        api.jobs.GetJob(request, metadata=(*CLIENT, ("x-request-id", "trace-42")))
    assert request_id_of(caught.value.trailing_metadata()) == "trace-42"
    assert any(
        getattr(record, "request_id", "") == "trace-42" or "trace-42" in record.getMessage()
        for record in caplog.records
    )
    _, call = api.pipelines.GetPipeline.with_call(
        pipeline_service_pb2.GetPipelineRequest(uuid=pipeline), metadata=CLIENT
    )
    generated = request_id_of(call.trailing_metadata())
    assert re.fullmatch(r"[0-9a-f]{16}", generated)
    # A presented id that is not a plain token is replaced, never echoed into logs.
    with pytest.raises(grpc.RpcError) as caught:
        api.jobs.GetJob(request, metadata=(*CLIENT, ("x-request-id", "bad id; " + "x" * 80)))
    assert re.fullmatch(r"[0-9a-f]{16}", request_id_of(caught.value.trailing_metadata()))


def test_json_log_lines_carry_the_request_id() -> None:
    record = logging.LogRecord(
        "pipelinejobs.rpc", logging.INFO, __file__, 1, "rpc=GetJob code=%s", ("OK",), None
    )
    record.request_id = "trace-7"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["request_id"] == "trace-7"
    assert entry["message"] == "rpc=GetJob code=OK"
    assert entry["level"] == "INFO"
