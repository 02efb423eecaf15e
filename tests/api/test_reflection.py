"""Server reflection: tools like grpcurl discover the services and their messages without the protos."""

from __future__ import annotations

from google.protobuf.descriptor_pool import DescriptorPool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from tests.support import Stubs


def test_reflection_lists_and_describes_the_services(api: Stubs) -> None:
    database = ProtoReflectionDescriptorDatabase(api.channel)
    services = set(database.get_services())
    assert {
        "pipelinejobs.v1.JobService",
        "pipelinejobs.v1.PipelineService",
        "grpc.health.v1.Health",
    } <= services
    pool = DescriptorPool(database)
    job_service = pool.FindServiceByName("pipelinejobs.v1.JobService")
    assert {"CreateJob", "SendEvent", "WatchJob", "ListJobs"} <= {
        method.name for method in job_service.methods
    }
    assert (
        pool.FindMessageTypeByName("pipelinejobs.v1.HistoryEvent").fields_by_name["hash"].type == 9
    )  # string
