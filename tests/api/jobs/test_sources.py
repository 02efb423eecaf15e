"""Where each event came from: the history records gRPC, admin and callback sources, and a job token
cannot claim to be an admin."""

from __future__ import annotations

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from tests.support import ADMIN, Stubs, create_job, error_info, history, register_pipeline, send


def test_history_records_where_each_event_came_from(api: Stubs) -> None:
    created = create_job(api, register_pipeline(api), {"test": "sources"})
    uuid = created.job.uuid
    send(api, uuid, "run", token=created.token)
    send(api, uuid, "update", metadata=ADMIN)  # an admin key and no token: an operator's event
    callback = job_service_pb2.SendEventRequest(
        uuid=uuid, event=job_pb2.JOB_EVENT_UPDATE, token=created.token, source=job_pb2.EVENT_SOURCE_CALLBACK
    )
    api.jobs.SendEvent(callback)
    sources = [job_pb2.EventSource.Name(event.source) for event in history(api, uuid)]
    assert sources == [
        "EVENT_SOURCE_GRPC",
        "EVENT_SOURCE_GRPC",
        "EVENT_SOURCE_ADMIN",
        "EVENT_SOURCE_CALLBACK",
    ]

    claim = job_service_pb2.SendEventRequest(
        uuid=uuid, event=job_pb2.JOB_EVENT_UPDATE, token=created.token, source=job_pb2.EVENT_SOURCE_ADMIN
    )
    with pytest.raises(grpc.RpcError) as caught:
        api.jobs.SendEvent(claim)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "ADMIN_REQUIRED"
    assert len(history(api, uuid)) == 4
