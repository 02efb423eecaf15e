"""Prometheus metrics of the gRPC server: calls by method and code, latency, and events by outcome."""

from __future__ import annotations

import grpc
import pytest
from prometheus_client import generate_latest

from .support import ServerThread, Stubs, create_job, register_pipeline, send


def sample(server: ServerThread, name: str, **labels: str) -> float:
    assert server.running is not None
    value = server.running.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def test_calls_and_events_are_counted_by_method_code_and_outcome(server: ServerThread, api: Stubs) -> None:
    created = create_job(api, register_pipeline(api), {"test": "metrics"})
    send(api, created.job.uuid, "run", token=created.token, key="k1")
    send(api, created.job.uuid, "run", token=created.token, key="k1")  # replayed
    with pytest.raises(grpc.RpcError):
        send(api, created.job.uuid, "ready", token=created.token)  # admin only: an error
    send(api, created.job.uuid, "finish", token=created.token)
    with pytest.raises(grpc.RpcError):
        send(api, created.job.uuid, "run", token=created.token)  # refused by the machine

    assert sample(server, "pipelinejobs_grpc_calls_total", method="CreateJob", code="OK") == 1
    assert sample(server, "pipelinejobs_grpc_calls_total", method="SendEvent", code="OK") == 3
    assert (
        sample(server, "pipelinejobs_grpc_calls_total", method="SendEvent", code="FAILED_PRECONDITION") == 1
    )
    assert sample(server, "pipelinejobs_grpc_calls_total", method="SendEvent", code="PERMISSION_DENIED") == 1
    assert sample(server, "pipelinejobs_events_total", event="run", outcome="applied") == 1
    assert sample(server, "pipelinejobs_events_total", event="run", outcome="replayed") == 1
    assert sample(server, "pipelinejobs_events_total", event="run", outcome="refused") == 1
    assert sample(server, "pipelinejobs_events_total", event="ready", outcome="error") == 1
    assert sample(server, "pipelinejobs_grpc_call_seconds_count", method="SendEvent") == 5
    assert server.running is not None
    exposition = generate_latest(server.running.metrics.registry).decode()
    assert created.token not in exposition
