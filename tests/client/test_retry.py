"""retry.py: every RPC of the service is declared safe or unsafe to repeat, and only safe calls repeat."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from google.protobuf import descriptor, message_factory

from pipelinejobs_client import JobsClient, RetryPolicy, ServiceUnavailable
from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_service_pb2
from pipelinejobs_client.errors import PipelineJobsError
from pipelinejobs_client.retry import RETRY_SAFE, RETRY_UNSAFE, method_of, safe_to_repeat

METHODS = [
    (f"/{service.full_name}/{method.name}", method)
    for module in (job_service_pb2, pipeline_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


@pytest.mark.parametrize(("name", "method"), METHODS, ids=[name for name, _ in METHODS])
def test_every_rpc_is_declared_safe_or_unsafe_to_repeat(
    name: str, method: descriptor.MethodDescriptor
) -> None:
    assert (name in RETRY_SAFE) != (name in RETRY_UNSAFE), f"declare {name} in retry.py, with the reason"


def test_the_tables_name_only_rpcs_of_the_service() -> None:
    assert set(RETRY_SAFE) | set(RETRY_UNSAFE) == {name for name, _ in METHODS}


def test_streams_are_never_repeated() -> None:
    streams = {name for name, method in METHODS if method.server_streaming or method.client_streaming}
    assert streams <= set(RETRY_UNSAFE)


@pytest.mark.parametrize(("name", "method"), METHODS, ids=[name for name, _ in METHODS])
def test_a_request_names_its_method(name: str, method: descriptor.MethodDescriptor) -> None:
    request = message_factory.GetMessageClass(method.input_type)()
    assert method_of(request) == name


@dataclass(frozen=True)
class CountingPolicy(RetryPolicy):
    seen: list[PipelineJobsError] = field(default_factory=list)

    def retryable(self, error: PipelineJobsError) -> bool:
        self.seen.append(error)
        return super().retryable(error)


@pytest.fixture
def nobody() -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{probe.getsockname()[1]}"


def test_a_call_declared_unsafe_is_sent_once(nobody: str, monkeypatch: pytest.MonkeyPatch) -> None:
    name = "/pipelinejobs.v1.JobService/GetStateMachine"
    assert safe_to_repeat(name)
    monkeypatch.setattr(
        "pipelinejobs_client.retry.RETRY_SAFE", {k: v for k, v in RETRY_SAFE.items() if k != name}
    )
    assert not safe_to_repeat(name)
    policy = CountingPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with JobsClient(nobody, timeout=2, retry=policy) as client, pytest.raises(ServiceUnavailable):
        client.get_state_machine()
    assert policy.seen == [], "a single attempt: the policy is never asked"
