"""Prometheus metrics of the gRPC server: calls by method and code, latency, and events by outcome.

Metrics live in a registry of their own per server, so several servers in one process (tests) do not
collide, and are served over HTTP by ``serve_metrics`` when a metrics port is configured.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.calls = Counter(
            "pipelinejobs_grpc_calls",
            "gRPC calls handled, by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pipelinejobs_grpc_call_seconds",
            "Time to answer a unary gRPC call, by method",
            ["method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.events = Counter(
            "pipelinejobs_events",
            "Job events received, by event name and outcome (applied, replayed, refused, error)",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.event_batches = Histogram(
            "pipelinejobs_event_batch_size",
            "Events written together in one batch (group commit, DESIGN section 6a)",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def observe_batch(self, size: int) -> None:
        self.event_batches.observe(size)

    def observe_call(self, method: str, code: grpc.StatusCode, seconds: float | None) -> None:
        self.calls.labels(method=method, code=code.name).inc()
        if seconds is not None:
            self.latency.labels(method=method).observe(seconds)

    def observe_event(self, event: str, outcome: str) -> None:
        self.events.labels(event=event, outcome=outcome).inc()


@dataclass
class MetricsEndpoint:
    """``/metrics`` served over HTTP on its own port, from a background thread."""

    server: WSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        port: int = self.server.server_address[1]
        return port

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve_metrics(metrics: ServerMetrics, host: str, port: int) -> MetricsEndpoint:
    server, thread = start_http_server(port, addr=host, registry=metrics.registry)
    return MetricsEndpoint(server, thread)
