"""One table from domain errors to transport codes, used by gRPC and HTTP alike.

Lookups walk the error's MRO, so a subclass inherits its parent's codes unless it has its own row
(the pattern of starlette/_exception_handler.py). Every gRPC error carries a google.rpc.ErrorInfo with
the error's stable ``reason`` and its metadata, so clients branch on data, not on message text.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from pipelinejobs_server.domain import errors

DOMAIN: Final = "pipelinejobs.v1"


@dataclass(frozen=True)
class Codes:
    grpc: grpc.StatusCode
    http: int


TABLE: Final[dict[type[errors.PipelineJobsError], Codes]] = {
    errors.PipelineJobsError: Codes(grpc.StatusCode.INTERNAL, 500),
    errors.InvalidArgument: Codes(grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.DataTooLarge: Codes(grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
    errors.NotFound: Codes(grpc.StatusCode.NOT_FOUND, 404),
    errors.InvalidTransition: Codes(grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.CancelNotAllowed: Codes(grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.Unauthenticated: Codes(grpc.StatusCode.UNAUTHENTICATED, 401),
    errors.PermissionDenied: Codes(grpc.StatusCode.PERMISSION_DENIED, 403),
    errors.IdempotencyConflict: Codes(grpc.StatusCode.ABORTED, 409),
    errors.ConcurrentModification: Codes(grpc.StatusCode.ABORTED, 409),
    errors.Unavailable: Codes(grpc.StatusCode.UNAVAILABLE, 503),
}


def codes_for(error: errors.PipelineJobsError) -> Codes:
    for cls in type(error).__mro__:
        if cls in TABLE:
            return TABLE[cls]
    return TABLE[errors.PipelineJobsError]


def to_grpc_status(error: errors.PipelineJobsError) -> grpc.Status:
    code = codes_for(error).grpc
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.message, details=[detail])
    result: grpc.Status = rpc_status.to_status(status)
    return result


async def abort(context: grpc.aio.ServicerContext[object, object], error: errors.PipelineJobsError) -> None:
    status = to_grpc_status(error)
    await context.abort(status.code, status.details, status.trailing_metadata)
