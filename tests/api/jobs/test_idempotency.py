"""Idempotency keys: the same key and payload replay the original; another payload is a conflict; a
retried ``fail`` replays rather than being refused; invalid keys."""

from __future__ import annotations

from functools import partial

import grpc

from tests.api.jobs.helpers import get_job, refused, rejected, snapshot
from tests.support import Stubs, create_job, history, send, state_name


def test_same_key_and_payload_replays_the_original(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    first = send(api, uuid, "run", token=job.token, data={"a": 1}, key="run-1")
    assert first.replayed is False
    assert first.event.idempotency_key == "run-1"
    length = len(history(api, uuid))

    again = send(api, uuid, "run", token=job.token, data={"a": 1}, key="run-1")
    assert again.replayed is True
    assert again.event.uuid == first.event.uuid
    assert again.event.seq == first.event.seq
    assert again.event.hash == first.event.hash
    assert again.job.seq == first.job.seq
    assert len(history(api, uuid)) == length

    # Still a replay after the job has moved on.
    send(api, uuid, "update", token=job.token, key="update-1")
    late = send(api, uuid, "run", token=job.token, data={"a": 1}, key="run-1")
    assert late.replayed is True
    assert late.event.uuid == first.event.uuid
    assert late.job.seq == 3
    assert len(history(api, uuid)) == length + 1


def test_same_key_with_a_different_payload_is_aborted(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "update", token=job.token, data={"a": 1}, key="k")
    before = snapshot(api, uuid)
    for event, data in (("update", {"a": 2}), ("update", {}), ("run", {"a": 1})):
        metadata = refused(
            partial(send, api, uuid, event, token=job.token, data=data, key="k"),
            grpc.StatusCode.ABORTED,
            "IDEMPOTENCY_CONFLICT",
        )
        assert metadata["seq"] == "2"
    assert snapshot(api, uuid) == before


def test_retried_fail_replays_instead_of_being_refused(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    failed = send(api, uuid, "fail", token=job.token, data={"why": "oom"}, key="fail-1")
    assert state_name(failed.job.state) == "FAILED"

    retried = send(api, uuid, "fail", token=job.token, data={"why": "oom"}, key="fail-1")
    assert retried.replayed is True
    assert retried.event.uuid == failed.event.uuid
    assert state_name(retried.job.state) == "FAILED"
    # Not refused: kept only as a late duplicate, so operators can see it arrived twice.
    assert [(record.event, record.reason) for record in rejected(api, uuid)] == [("fail", "DUPLICATE")]

    # A fail without that key is a new event, and FAILED does not allow it.
    refused(
        lambda: send(api, uuid, "fail", token=job.token, data={"why": "oom"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert get_job(api, uuid).seq == 3


def test_invalid_idempotency_key_is_invalid_argument(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    for key in ("has space", "x" * 201, "tab\t"):
        metadata = refused(
            partial(send, api, job.job.uuid, "run", token=job.token, key=key),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert metadata["field"] == "idempotency_key"
    assert get_job(api, job.job.uuid).seq == 1
