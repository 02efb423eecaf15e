"""F4: every repeated or map field of every request has a cap, checked before any database work.

The finding: ListJobs with 300,000 ``states`` took 23 s, stalled other calls and ended UNAVAILABLE (1,000,000
gave INTERNAL, DocumentTooLarge); WatchJob's ``until_states`` the same; CreateJob kept 10,000 sample links.

The walk below reads every request type of both services from their descriptors (recursing into message
fields), so an RPC or field added later is covered without a line here: a repeated or map field missing
from ``api/caps.py`` CAPS fails the first test, and each counted cap is tried through real gRPC with one
value too many (INVALID_ARGUMENT naming the field) and with exactly the cap (accepted).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import grpc
import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor, MethodDescriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from pipelinejobs_client.api.v1 import (
    feed_pb2,
    job_pb2,
    job_service_pb2,
    pipeline_pb2,
    pipeline_service_pb2,
)
from pipelinejobs_server.api.caps import CAPS, BoundedByBytes, Cap
from tests.api.jobs.helpers import refused
from tests.support import CLIENT, Stubs, create_job, register_pipeline

SERVICES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
)
STATES = [value for value in job_pb2.JobState.values() if value != job_pb2.JOB_STATE_UNSPECIFIED]


@dataclass(frozen=True)
class Reached:
    """A repeated or map field as a request reaches it: the RPC and the path from the request's root."""

    method: MethodDescriptor
    path: str
    field: FieldDescriptor

    def __str__(self) -> str:
        return f"{self.method.name}.{self.path}"


def _walk(
    descriptor: Descriptor, method: MethodDescriptor, prefix: str, seen: frozenset[str]
) -> Iterator[Reached]:
    for field in descriptor.fields:
        path = prefix + field.name
        if field.is_repeated:
            yield Reached(method, path, field)
        inner = field.message_type
        if inner is not None and inner.full_name not in seen:  # Struct and Value nest each other
            yield from _walk(inner, method, f"{path}.", seen | {inner.full_name})


def reached() -> list[Reached]:
    return [
        found
        for service in SERVICES
        for method in service.methods
        for found in _walk(method.input_type, method, "", frozenset({method.input_type.full_name}))
    ]


def counted() -> list[Reached]:
    return [found for found in reached() if isinstance(CAPS.get(found.field.full_name), Cap)]


def test_every_repeated_or_map_field_of_every_request_has_a_cap() -> None:
    """F4: ``states``, ``until_states`` and CreateJob's links had none; a new field must not go without."""
    undeclared = sorted({str(found) for found in reached() if found.field.full_name not in CAPS})
    assert undeclared == []
    # And the table holds nothing that no request has (a renamed field would leave its cap behind).
    assert set(CAPS) == {found.field.full_name for found in reached()}
    # Map fields are Struct's, bounded by the data byte limits: declared so, not skipped.
    maps = {
        found.field.full_name
        for found in reached()
        if found.field.message_type is not None and found.field.message_type.GetOptions().map_entry
    }
    assert maps == {"google.protobuf.Struct.fields"}
    assert all(isinstance(CAPS[name], BoundedByBytes) for name in maps)


# -- each cap through real gRPC ------------------------------------------------------------------------------


@dataclass
class Fixtures:
    pipeline: str
    job: job_service_pb2.CreateJobResponse


def base_request(method: str, ready: Fixtures) -> Message:
    """A valid request of ``method``, which the field under test is then set on."""
    bases: dict[str, Callable[[], Message]] = {
        "CreateJob": lambda: job_service_pb2.CreateJobRequest(
            pipeline_uuid=ready.pipeline, links=job_pb2.JobLinks(sample=[uuid.uuid4().hex])
        ),
        "ListJobs": lambda: job_service_pb2.ListJobsRequest(page_size=1),
        # The job is CREATED and every entry is seen, so a watch until CREATED ends at once.
        "WatchJob": lambda: job_service_pb2.WatchJobRequest(
            uuid=ready.job.job.uuid, after_seq=ready.job.job.seq, until_states=[job_pb2.JOB_STATE_CREATED]
        ),
        "RegisterPipeline": lambda: pipeline_service_pb2.RegisterPipelineRequest(
            name="caps", components=[pipeline_pb2.PipelineComponent(id="one")]
        ),
        "ListEvents": lambda: feed_pb2.ListEventsRequest(page_size=1),
        # Ends at once: from now, until a time that has passed.
        "WatchEvents": lambda: feed_pb2.WatchEventsRequest(from_now=True, end_time=Timestamp(seconds=1)),
    }
    assert method in bases, f"add a valid {method} request here: it has a capped field"
    return bases[method]()


def values(field: FieldDescriptor, count: int) -> list[Any]:
    """``count`` values for ``field``, all valid; past the number of distinct ones, repeats."""
    if field.enum_type is not None:
        known: dict[str, list[Any]] = {
            "pipelinejobs.v1.JobState": STATES,
            "pipelinejobs.v1.JobEvent": [v for v in job_pb2.JobEvent.values() if v],
            "pipelinejobs.v1.EventSource": [v for v in job_pb2.EventSource.values() if v],
        }
        assert field.enum_type.full_name in known, f"add values for {field.full_name}"
        choices = known[field.enum_type.full_name]
        return [choices[n % len(choices)] for n in range(count)]
    if field.message_type is not None:
        assert field.message_type.full_name == "pipelinejobs.v1.PipelineComponent", field.full_name
        return [pipeline_pb2.PipelineComponent(id=f"component-{n}", version="1") for n in range(count)]
    assert field.type == FieldDescriptor.TYPE_STRING, f"add values for {field.full_name}"
    if field.name.endswith("uuids"):
        return [str(uuid.uuid4()) for _ in range(count)]
    return [f"{field.name}-{n}-{uuid.uuid4().hex[:8]}" for n in range(count)]


def with_values(request: Message, path: str, field: FieldDescriptor, count: int) -> Message:
    *parents, name = path.split(".")
    holder = request
    for parent in parents:
        holder = getattr(holder, parent)
    container = getattr(holder, name)
    del container[:]
    container.extend(values(field, count))
    return request


def call(api: Stubs, method: MethodDescriptor, request: Message) -> object:
    stub = api.jobs if method.containing_service.name == "JobService" else api.pipelines
    rpc = getattr(stub, method.name)
    if method.server_streaming:
        return list(rpc(request, metadata=CLIENT, timeout=30))
    return rpc(request, metadata=CLIENT, timeout=30)


@pytest.fixture
def ready(api: Stubs) -> Fixtures:
    pipeline = register_pipeline(api)
    return Fixtures(pipeline, create_job(api, pipeline))


@pytest.mark.parametrize("found", counted(), ids=str)
def test_one_value_past_each_cap_is_refused_naming_the_field_and_the_cap_itself_is_accepted(
    api: Stubs, ready: Fixtures, found: Reached
) -> None:
    """F4: past its cap a repeated field is INVALID_ARGUMENT naming it; at the cap the call succeeds."""
    cap = CAPS[found.field.full_name]
    assert isinstance(cap, Cap)
    over = with_values(base_request(found.method.name, ready), found.path, found.field, cap.most + 1)
    metadata = refused(
        partial(call, api, found.method, over), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT"
    )
    assert metadata == {"field": found.path}
    at = with_values(base_request(found.method.name, ready), found.path, found.field, cap.most)
    call(api, found.method, at)


def test_the_findings_requests_are_refused_at_once_and_change_nothing(api: Stubs, ready: Fixtures) -> None:
    """F4: the finding's own requests, each refused before the database sees it (300,000 states took 23 s)."""
    running, finished = [job_pb2.JOB_STATE_RUNNING], [job_pb2.JOB_STATE_FINISHED]
    samples = job_pb2.JobLinks(sample=[f"s{n}" for n in range(10_000)])
    huge: list[tuple[str, Message, str]] = [
        ("ListJobs", job_service_pb2.ListJobsRequest(states=running * 300_000), "states"),
        ("ListJobs", job_service_pb2.ListJobsRequest(states=running * 1_000_000), "states"),
        (
            "WatchJob",
            job_service_pb2.WatchJobRequest(uuid=ready.job.job.uuid, until_states=finished * 10**6),
            "until_states",
        ),
        (
            "CreateJob",
            job_service_pb2.CreateJobRequest(pipeline_uuid=ready.pipeline, links=samples),
            "links.sample",
        ),
    ]
    for method, request, name in huge:
        started = time.monotonic()
        attempt = partial(call, api, SERVICES[0].methods_by_name[method], request)
        metadata = refused(attempt, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        assert metadata == {"field": name}
        assert time.monotonic() - started < 5, method
    everything = api.jobs.ListJobs(job_service_pb2.ListJobsRequest(), metadata=CLIENT)
    assert [job.uuid for job in everything.jobs] == [ready.job.job.uuid]
