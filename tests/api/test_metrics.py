"""Prometheus metrics of the gRPC server: calls by method and code, latency, and events by outcome."""

from __future__ import annotations

import urllib.request
from dataclasses import replace

import grpc
import pytest
from prometheus_client import generate_latest

from tests.servers import ServerThread, test_settings
from tests.support import Stubs, create_job, register_pipeline, send, stubs


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


def test_metrics_are_served_over_http_when_a_port_is_set(mongodb_uri: str, database_name: str) -> None:
    server = ServerThread(replace(test_settings(mongodb_uri, database_name), metrics_port=0)).start()
    try:
        with stubs(server.address) as api:
            register_pipeline(api)
        assert server.running is not None
        assert server.running.metrics_http is not None
        url = f"http://127.0.0.1:{server.running.metrics_http.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
    finally:
        server.stop()
    assert 'pipelinejobs_grpc_calls_total{code="OK",method="RegisterPipeline"} 1.0' in text
