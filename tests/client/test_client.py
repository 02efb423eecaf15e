"""JobsClient and AsyncJobsClient against a real server: coverage of the service, typed errors, retries."""

from __future__ import annotations

import asyncio
import inspect
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest

from pipelinejobs_client import (
    AdminRequired,
    AsyncJobsClient,
    CancelNotAllowed,
    DataTooLarge,
    IdempotencyConflict,
    InvalidArgument,
    InvalidToken,
    InvalidTransition,
    JobNotFound,
    JobsClient,
    PipelineJobsError,
    PipelineNotFound,
    RetryPolicy,
    ServiceUnavailable,
    TokenExpired,
    Unauthenticated,
    UnknownEvent,
)
from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_service_pb2
from pipelinejobs_client.errors import ApiKeyRequired, InvalidApiKey
from pipelinejobs_client.names import event_name, state_name
from tests.servers import ServerThread, test_settings
from tests.support import ADMIN_KEY, CLIENT_KEY, MovableClock

LINKS: dict[str, Any] = {
    "lab": "UW_BIOFAB",
    "experiment": "Yeast-Gates",
    "sample": "sample.uw_biofab.133737/A2",
}
UNKNOWN_JOB = "0badc0de-0000-5000-8000-00000000abcd"
RPCS = [
    (service.name, method.name)
    for module in (job_service_pb2, pipeline_service_pb2)
    for service in module.DESCRIPTOR.services_by_name.values()
    for method in service.methods
]


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


@pytest.fixture
def pipeline(client: JobsClient) -> str:
    return client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid


@pytest.fixture
def created(client: JobsClient, pipeline: str) -> job_service_pb2.CreateJobResponse:
    return client.create_job(pipeline, **LINKS)


@pytest.mark.parametrize(("service", "rpc"), RPCS, ids=[f"{s}.{r}" for s, r in RPCS])
def test_every_rpc_has_a_method_on_both_clients(service: str, rpc: str) -> None:
    name = snake(rpc)
    blocking = getattr(JobsClient, name, None)
    asynchronous = getattr(AsyncJobsClient, name, None)
    assert callable(blocking), f"JobsClient.{name} is missing for {service}.{rpc}"
    assert asynchronous is not None, f"AsyncJobsClient.{name} is missing for {service}.{rpc}"
    assert inspect.iscoroutinefunction(asynchronous) or inspect.isasyncgenfunction(asynchronous)


def test_the_descriptor_lists_the_services_of_the_design() -> None:
    design = {
        "PipelineService": {"RegisterPipeline", "GetPipeline", "ListPipelines"},
        "JobService": {"CreateJob", "GetJob", "ListJobs", "SendEvent", "CancelJob", "ListJobEvents"}
        | {"WatchJob", "VerifyHistory", "ListRejectedEvents", "GetStateMachine"},
    }
    for service, rpcs in design.items():
        assert rpcs <= {rpc for name, rpc in RPCS if name == service}


def test_a_job_through_the_blocking_client(
    client: JobsClient, created: job_service_pb2.CreateJobResponse
) -> None:
    uuid, token = created.job.uuid, created.token
    assert created.created
    assert state_name(created.job.state) == "CREATED"
    client.send_event(uuid, "run", token=token)
    reply = client.send_event(uuid, "update", token=token, data={"roadrunner": "meep-meep!"})
    assert (state_name(reply.job.state), reply.event.seq) == ("RUNNING", 3)
    assert [event_name(e.name) for e in client.iter_job_events(uuid, page_size=2)] == [
        "create",
        "run",
        "update",
    ]
    assert client.verify_history(uuid).valid
    assert len(client.get_state_machine().transitions) > 20


def test_a_retried_event_with_the_same_key_applies_once(
    client: JobsClient, created: job_service_pb2.CreateJobResponse
) -> None:
    uuid, token = created.job.uuid, created.token
    first = client.send_event(uuid, "run", token=token, data={"n": 1}, idempotency_key="run-once")
    again = client.send_event(uuid, "run", token=token, data={"n": 1}, idempotency_key="run-once")
    assert (first.replayed, again.replayed) == (False, True)
    assert (again.event.uuid, again.job.seq) == (first.event.uuid, 2)
    with pytest.raises(IdempotencyConflict):
        client.send_event(uuid, "run", token=token, data={"n": 2}, idempotency_key="run-once")
    assert client.get_job(uuid).seq == 2


def test_typed_errors(
    server: ServerThread, client: JobsClient, created: job_service_pb2.CreateJobResponse
) -> None:
    uuid, token = created.job.uuid, created.token
    with pytest.raises(JobNotFound):
        client.get_job(UNKNOWN_JOB)
    with pytest.raises(PipelineNotFound):
        client.create_job(UNKNOWN_JOB, **LINKS)
    with pytest.raises(InvalidTransition) as refused:
        client.send_event(uuid, "finish", token=token)
    assert (refused.value.state, refused.value.event) == ("CREATED", "finish")
    assert refused.value.reason == "INVALID_TRANSITION"
    with pytest.raises(InvalidToken):
        client.send_event(uuid, "run", token="not-the-token")
    with pytest.raises(AdminRequired):
        client.send_event(uuid, "reset", token=token)
    with pytest.raises(DataTooLarge):
        client.send_event(uuid, "update", token=token, data={"blob": "x" * 70_000})
    with pytest.raises(UnknownEvent):
        client.send_event(uuid, "explode", token=token)  # refused before any call
    client.send_event(uuid, "run", token=token)
    with pytest.raises(CancelNotAllowed):
        client.cancel_job(uuid, token=token)
    with JobsClient(server.address) as anonymous, pytest.raises(ApiKeyRequired):
        anonymous.get_job(uuid)
    with JobsClient(server.address, api_key="wrong") as wrong, pytest.raises(InvalidApiKey) as bad_key:
        wrong.get_job(uuid)
    assert isinstance(bad_key.value, Unauthenticated)
    with JobsClient(server.address, api_key=ADMIN_KEY) as admin:
        assert state_name(admin.send_event(uuid, "reset").job.state) == "RESET"


def test_an_expired_token_is_refused(mongodb_uri: str, database_name: str) -> None:
    settings = test_settings(mongodb_uri, database_name + "_ttl", token_ttl=timedelta(hours=72))
    clock = MovableClock()
    thread = ServerThread(settings, clock=clock).start()
    try:
        with JobsClient(thread.address, api_key=CLIENT_KEY) as client:
            pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
            created = client.create_job(pipeline, **LINKS)
            clock.advance(timedelta(hours=72))  # the server's time, not the test's: nothing waits
            with pytest.raises(TokenExpired):
                client.send_event(created.job.uuid, "run", token=created.token)
    finally:
        thread.stop()


@dataclass(frozen=True)
class CountingPolicy(RetryPolicy):
    """A RetryPolicy that remembers every failure it was asked about."""

    seen: list[PipelineJobsError] = field(default_factory=list)

    def retryable(self, error: PipelineJobsError) -> bool:
        self.seen.append(error)
        return super().retryable(error)


def test_unavailable_is_retried_then_raised(closed_port: int) -> None:
    policy = CountingPolicy(attempts=3, initial_backoff_s=0.01, max_backoff_s=0.02)
    with (
        JobsClient(f"127.0.0.1:{closed_port}", timeout=2, retry=policy) as client,
        pytest.raises(ServiceUnavailable),
    ):
        client.get_state_machine()
    # Asked about the first two failures (both retried); the third attempt was the last.
    assert [type(error) for error in policy.seen] == [ServiceUnavailable, ServiceUnavailable]


def test_unavailable_is_retried_then_raised_by_the_async_client(closed_port: int) -> None:
    policy = CountingPolicy(attempts=2, initial_backoff_s=0.01, max_backoff_s=0.02)

    async def main() -> None:
        async with AsyncJobsClient(f"127.0.0.1:{closed_port}", timeout=2, retry=policy) as client:
            await client.get_state_machine()

    with pytest.raises(ServiceUnavailable):
        asyncio.run(main())
    assert len(policy.seen) == 1


def test_the_async_client_end_to_end(server: ServerThread) -> None:
    async def main() -> list[str]:
        async with AsyncJobsClient(server.address, api_key=CLIENT_KEY) as client:
            pipeline = (await client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"])).pipeline.uuid
            assert (await client.get_pipeline(pipeline)).uuid == pipeline
            created = await client.create_job(pipeline, **LINKS, data={"n": 1})
            uuid, token = created.job.uuid, created.token
            await client.send_event(uuid, "run", token=token, idempotency_key="k1")
            replay = await client.send_event(uuid, "run", token=token, idempotency_key="k1")
            assert replay.replayed
            await client.send_event(uuid, "update", token=token, data={"roadrunner": "meep-meep!"})
            with pytest.raises(InvalidTransition):
                await client.send_event(uuid, "validate", token=token, idempotency_key="k2")
            assert state_name((await client.get_job(uuid)).state) == "RUNNING"
            assert (await client.verify_history(uuid)).valid
            other = await client.create_job(pipeline, **LINKS, data={"n": 2})
            await client.cancel_job(other.job.uuid, token=other.token)
            with pytest.raises(JobNotFound):
                await client.get_job(other.job.uuid)
            return [event_name(event.name) async for event in client.iter_job_events(uuid, page_size=1)]

    assert asyncio.run(main()) == ["create", "run", "update"]


def test_data_nested_past_protobufs_limit_gets_a_typed_error_from_the_server(server: ServerThread) -> None:
    nested: dict[str, Any] = {}
    inner = nested
    for _ in range(40):
        inner["a"] = {}
        inner = inner["a"]
    with JobsClient(server.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("deep", ["deep@1"]).pipeline.uuid
        created = client.create_job(pipeline, lab="L", data={"deep": "no"})
        with pytest.raises(InvalidArgument) as caught:
            client.send_event(created.job.uuid, "update", token=created.token, data=nested)
    assert caught.value.field in ("request", "data")
