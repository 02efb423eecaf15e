"""Which calls may be repeated, which failures to retry, and how long to wait between attempts.

Every RPC of the service is declared here, by its full gRPC method name, as safe or unsafe to repeat,
with the reason. The client repeats only the safe ones; a new RPC in neither table fails the tests
(tests/client/test_retry.py), so nothing is ever retried by default.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from google.protobuf.message import Message

from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_service_pb2

from .errors import ConcurrentModification, EventQueueFull, PipelineJobsError, ServiceUnavailable

_READ: Final = "a read: it changes nothing"

RETRY_SAFE: Final[Mapping[str, str]] = {
    "/pipelinejobs.v1.PipelineService/RegisterPipeline": "idempotent: the same pipeline gets the same uuid",
    "/pipelinejobs.v1.PipelineService/GetPipeline": _READ,
    "/pipelinejobs.v1.PipelineService/ListPipelines": _READ,
    "/pipelinejobs.v1.JobService/CreateJob": "idempotent by identity: a repeat returns the same job",
    "/pipelinejobs.v1.JobService/GetJob": _READ,
    "/pipelinejobs.v1.JobService/ListJobs": _READ,
    "/pipelinejobs.v1.JobService/CountJobs": _READ,
    "/pipelinejobs.v1.JobService/SendEvent": "every event carries an idempotency key: a repeat is replayed",
    "/pipelinejobs.v1.JobService/CancelJob": "a repeat that finds the job gone reports the cancel as done",
    "/pipelinejobs.v1.JobService/ListJobEvents": _READ,
    # No idempotency key: a repeat after a lost reply can log the same rejection twice. The log keeps
    # what was received, at least once; dropping a rejection would lose it for good.
    "/pipelinejobs.v1.JobService/RejectEvent": "at least once: a duplicate row beats a lost one",
    "/pipelinejobs.v1.JobService/ListRejectedEvents": _READ,
    "/pipelinejobs.v1.JobService/VerifyHistory": _READ,
    "/pipelinejobs.v1.JobService/RevokeTokens": "revoking what is already revoked removes nothing more",
    "/pipelinejobs.v1.JobService/GetStateMachine": _READ,
    "/pipelinejobs.v1.JobService/ExportProvenance": _READ,
    "/pipelinejobs.v1.JobService/ListEvents": _READ,
}

RETRY_UNSAFE: Final[Mapping[str, str]] = {
    "/pipelinejobs.v1.JobService/WatchJob": (
        "a stream: a repeat would send the entries already received again; resume with after_seq"
    ),
    "/pipelinejobs.v1.JobService/WatchEvents": (
        "a stream: a repeat would send the entries already received again; resume with after_cursor"
    ),
}


def _methods_by_request() -> dict[str, str]:
    # buf's STANDARD lint gives every RPC a request message of its own, so the request names the call.
    methods: dict[str, str] = {}
    for module in (job_service_pb2, pipeline_service_pb2):
        for service in module.DESCRIPTOR.services_by_name.values():
            for method in service.methods:
                if method.input_type.full_name in methods:
                    raise AssertionError(f"two RPCs take {method.input_type.full_name}")
                methods[method.input_type.full_name] = f"/{service.full_name}/{method.name}"
    return methods


_METHODS: Final = _methods_by_request()


def method_of(request: Message) -> str:
    """The full gRPC method name (``/pipelinejobs.v1.JobService/GetJob``) that takes ``request``."""
    return _METHODS[request.DESCRIPTOR.full_name]


def safe_to_repeat(method: str) -> bool:
    """Whether a call of ``method`` (a full gRPC method name) may be sent again after a failure."""
    return method in RETRY_SAFE


@dataclass(frozen=True)
class RetryPolicy:
    """Retry ``UNAVAILABLE`` (and lost compare-and-set races, and a full event queue) with jittered backoff.

    Only calls that are safe to repeat (``RETRY_SAFE``) are retried: reads change nothing, registrations
    and job creation are idempotent by identity, and every event carries an idempotency key.
    """

    attempts: int = 5
    initial_backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def retryable(self, error: PipelineJobsError) -> bool:
        """Whether ``error`` is worth another attempt (the call itself being safe to repeat)."""
        return isinstance(error, ServiceUnavailable | ConcurrentModification | EventQueueFull)

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (0 for the first)."""
        ceiling = min(self.max_backoff_s, self.initial_backoff_s * 2**attempt)
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not security


NO_RETRY = RetryPolicy(attempts=1)
