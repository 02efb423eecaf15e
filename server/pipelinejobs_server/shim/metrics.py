"""Prometheus metrics: callbacks by endpoint, status, outcome and HTTP code, and their latency.

Each app has its own registry (not prometheus_client's global one), so several shims in one process
(tests, ``up``) never collide. Label values come from closed sets only: a status outside the tables
counts as ``OTHER``, so a caller cannot grow the series without bound.
"""

from __future__ import annotations

from typing import Final

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest

from pipelinejobs_server.domain import fsm

from .statuses import TABLES

OTHER: Final = "OTHER"
OUTCOMES: Final = ("applied", "replayed", "refused", "unmapped", "error")
_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def status_label(kind: str, status: str) -> str:
    """A bounded label: a table's status, an event name for event messages, else OTHER."""
    table = TABLES.get(kind)
    if table is not None:
        return status if status in table else OTHER
    return status if fsm.is_event(status) else OTHER


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.callbacks = Counter(
            "pipelinejobs_shim_callbacks",
            "Callbacks and event messages handled, by endpoint, executor status, outcome and HTTP code.",
            ["endpoint", "status", "outcome", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "pipelinejobs_shim_callback_seconds",
            "Time to answer a callback or event message, including the gRPC call.",
            ["endpoint"],
            buckets=_BUCKETS,
            registry=self.registry,
        )

    def observe(self, endpoint: str, kind: str, status: str, outcome: str, code: int, seconds: float) -> None:
        """``kind`` (agave, tapis, event) says which closed set ``status`` must come from."""
        label = status_label(kind, status)
        self.callbacks.labels(endpoint, label, outcome, str(code)).inc()
        self.latency.labels(endpoint).observe(seconds)

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
