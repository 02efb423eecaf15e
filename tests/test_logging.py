"""Tokens and API keys never appear in the server's logs, whatever the outcome of a call."""

from __future__ import annotations

import logging

import grpc
import pytest

from .support import ADMIN_KEY, CLIENT_KEY, Stubs, create_job, register_pipeline, send


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
