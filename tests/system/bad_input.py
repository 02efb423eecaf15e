"""What the bad-input suites share (DESIGN 6.5): what a server process has to aim at (conftest.py starts
it), every RPC of the contract, the check that an error is precise, and a snapshot of the database that
proves a refused call changed nothing.

"Precise" means: a status code that says what was wrong (never UNKNOWN, INTERNAL or UNAVAILABLE) and a
``google.rpc.ErrorInfo`` with one of the service's stable reasons, so a client can branch on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import descriptor, message, message_factory
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, settings
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_service_pb2
from pipelinejobs_server.domain import errors
from pipelinejobs_server.storage.feed import PENDING as FEED_MARK
from tests.servers import ServerProcess
from tests.support import error_info, stubs

# Reproducible and bounded, as in test_shim_fuzz.py: no example database, no deadline flakes.
BOUNDED = settings(
    max_examples=50,
    deadline=None,
    database=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)

SERVICES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
)
# Every RPC of the contract, read off the descriptors: a new RPC is fuzzed without anyone adding it here.
METHODS = tuple(method for service in SERVICES for method in service.methods)

PRECISE = frozenset(
    {
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.NOT_FOUND,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


def _reasons(cls: type[errors.PipelineJobsError]) -> set[str]:
    return {cls.reason}.union(*(_reasons(sub) for sub in cls.__subclasses__()))


REASONS = frozenset(_reasons(errors.PipelineJobsError) - {"INTERNAL"})


@dataclass(frozen=True)
class Target:
    """A running server and what there is to aim at in its database."""

    server: ServerProcess
    database: str
    pipeline: str
    job: str  # RUNNING
    token: str
    fresh: str  # CREATED and never RUNNING: CancelJob may delete it
    fresh_token: str


def method_path(method: descriptor.MethodDescriptor) -> str:
    return f"/{method.containing_service.full_name}/{method.name}"


def request_class(method: descriptor.MethodDescriptor) -> type[message.Message]:
    cls: type[message.Message] = message_factory.GetMessageClass(method.input_type)
    return cls


def assert_precise(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    code = error.code()
    assert code in PRECISE, f"{code.name}: {error.details()}"
    info = error_info(error)
    assert info.domain == "pipelinejobs.v1", info
    assert info.reason in REASONS, info
    return info


def assert_serving(target: Target) -> None:
    with stubs(target.server.address) as api:
        reply = health_pb2_grpc.HealthStub(api.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert target.server.process.poll() is None


class Snapshot:
    """The service's collections, read whole (the test database is small): what a refused call must
    leave exactly as it was. The rejected-events log only counts: refusals by the state machine are
    recorded there on purpose (DESIGN 5)."""

    def __init__(self, database: Database[dict[str, Any]]) -> None:
        self._database = database

    def take(self) -> tuple[Any, ...]:
        # Job parameters and pipeline options can be large; their documents are compared without them.
        # No refused call writes them anyway: they are set once, when the document is inserted. The
        # feed's mark on history entries is the relay's to clear, at any moment: not the call's doing.
        parts = [
            list(
                self._database[name]
                .find({}, {"data_json": 0, "options_json": 0, FEED_MARK: 0})
                .sort("_id", 1)
            )
            for name in ("pipelines", "jobs", "job_events")
        ]
        return (*parts, self._database["rejected_events"].count_documents({}))


def assert_unchanged(
    before: tuple[Any, ...], after: tuple[Any, ...], info: error_details_pb2.ErrorInfo
) -> None:
    assert after[:3] == before[:3], f"a refused call ({info.reason}) changed the database"
    recorded = after[3] - before[3]
    # An event the state machine refused is kept in the rejected-events log, with its reason.
    assert recorded == (1 if info.reason == "INVALID_TRANSITION" else 0), (info.reason, recorded)
