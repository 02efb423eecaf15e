"""Bad requests get precise errors and change nothing: unknown jobs, invalid uuids and event values,
``create`` as an event; data over the size limits or nested too deep, and a server with smaller limits."""

from __future__ import annotations

from functools import partial

import grpc
import pytest
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.settings import Limits
from tests.api.jobs.helpers import (
    UNKNOWN_JOB,
    Document,
    get_job,
    nested,
    other_server,
    refused,
    snapshot,
    verify,
)
from tests.support import ADMIN, CLIENT, Stubs, create_job, history, register_pipeline, send


def test_unknown_job_is_not_found(api: Stubs) -> None:
    # With an API key: callers with none hear INVALID_TOKEN instead (tests/security/test_oracle.py).
    cancel = job_service_pb2.CancelJobRequest(uuid=UNKNOWN_JOB, token="whatever")
    reject = job_service_pb2.RejectEventRequest(uuid=UNKNOWN_JOB, token="whatever", event="X", reason="X")
    for call in (
        lambda: get_job(api, UNKNOWN_JOB),
        lambda: send(api, UNKNOWN_JOB, "run", token="whatever", metadata=CLIENT),
        lambda: send(api, UNKNOWN_JOB, "run", metadata=ADMIN),
        lambda: api.jobs.CancelJob(cancel, metadata=CLIENT),
        lambda: api.jobs.RejectEvent(reject, metadata=CLIENT),
        lambda: history(api, UNKNOWN_JOB),
        lambda: verify(api, UNKNOWN_JOB),
    ):
        metadata = refused(call, grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
        assert metadata["uuid"] == UNKNOWN_JOB


@pytest.mark.parametrize(
    "bad", ["", "not-a-uuid", UNKNOWN_JOB.upper(), UNKNOWN_JOB.replace("-", ""), UNKNOWN_JOB + "0"]
)
def test_invalid_uuid_is_invalid_argument(api: Stubs, bad: str) -> None:
    for call in (
        lambda: get_job(api, bad),
        lambda: send(api, bad, "run", token="whatever"),
        lambda: history(api, bad),
        lambda: verify(api, bad),
        lambda: api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=bad, token="x"), metadata=CLIENT),
    ):
        metadata = refused(call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        assert metadata["field"] == "uuid"


@pytest.mark.parametrize("value", [job_pb2.JOB_EVENT_UNSPECIFIED, 99, -1])
def test_unknown_event_value_is_invalid_argument(api: Stubs, pipeline: str, value: int) -> None:
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    request = job_service_pb2.SendEventRequest(
        uuid=job.job.uuid, event=job_pb2.JobEvent.ValueType(value), token=job.token
    )
    metadata = refused(lambda: api.jobs.SendEvent(request), grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_EVENT")
    assert metadata["field"] == "event"
    assert snapshot(api, job.job.uuid) == before


def test_create_sent_as_an_event_is_a_failed_precondition(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    for metadata in ((), ADMIN):
        info = refused(
            partial(send, api, job.job.uuid, "create", token=job.token, metadata=metadata),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INVALID_TRANSITION",
        )
        assert info == {"state": "CREATED", "event": "create"}
    assert snapshot(api, job.job.uuid) == before


# -- sizes and nesting ---------------------------------------------------------------------------------------


def test_event_data_over_64_kib_is_refused_and_changes_nothing(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "update", token=job.token, data={"blob": "x" * (64 * 1024)}),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "DATA_TOO_LARGE",
    )
    assert metadata["limit"] == str(64 * 1024)
    assert snapshot(api, uuid) == before
    # Just under the limit is fine.
    assert send(api, uuid, "update", token=job.token, data={"blob": "x" * (60 * 1024)}).event.seq == 3


def test_job_data_over_256_kib_is_refused(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    refused(
        lambda: create_job(api, pipeline, data={"blob": "x" * (256 * 1024)}),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "DATA_TOO_LARGE",
    )
    assert db.jobs.count_documents({}) == 0
    assert create_job(api, pipeline, data={"blob": "x" * (250 * 1024)}).created is True


def test_data_nested_deeper_than_32_is_invalid(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "update", token=job.token, data=nested(33)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata["field"] == "data"
    refused(
        lambda: create_job(api, pipeline, data=nested(33)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert snapshot(api, uuid) == before
    assert send(api, uuid, "update", token=job.token, data=nested(32)).event.seq == 2


def test_data_nested_far_too_deep_is_invalid_argument(api: Stubs, pipeline: str) -> None:
    """DESIGN 6.5: bad input gets a precise error; not UNKNOWN from a protobuf decode failure."""
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    before = snapshot(api, uuid)
    for call in (
        lambda: send(api, uuid, "update", token=job.token, data=nested(50)),
        lambda: create_job(api, pipeline, data=nested(50)),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert snapshot(api, uuid) == before


def test_a_server_with_smaller_limits_enforces_them(mongodb_uri: str, database_name: str) -> None:
    limits = Limits(max_event_data_bytes=100, max_job_data_bytes=200, max_data_depth=3)
    with other_server(mongodb_uri, database_name, limits=limits) as small:
        pipeline = register_pipeline(small)
        job = create_job(small, pipeline, data={"k": "x" * 100})
        uuid = job.job.uuid
        assert send(small, uuid, "update", token=job.token, data={"k": "x" * 50}).event.seq == 2
        metadata = refused(
            lambda: send(small, uuid, "update", token=job.token, data={"k": "x" * 100}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "DATA_TOO_LARGE",
        )
        assert metadata["limit"] == "100"
        refused(
            lambda: create_job(small, pipeline, data={"k": "x" * 200}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "DATA_TOO_LARGE",
        )
        refused(
            lambda: send(small, uuid, "update", token=job.token, data=nested(4)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert get_job(small, uuid).seq == 2
