"""Domain errors as rich gRPC statuses: the code from the shared table (codes.py) and a
``google.rpc.ErrorInfo`` with the error's stable ``reason`` and its metadata, so clients branch on data,
not on message text.
"""

from __future__ import annotations

from typing import Final

import grpc
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from pipelinejobs_server.codes import codes_for
from pipelinejobs_server.domain import errors

DOMAIN: Final = "pipelinejobs.v1"


def to_grpc_status(error: errors.PipelineJobsError) -> grpc.Status:
    code = codes_for(error).grpc
    info = error_details_pb2.ErrorInfo(reason=error.reason, domain=DOMAIN, metadata=error.metadata)
    detail = any_pb2.Any()
    detail.Pack(info)
    status = status_pb2.Status(code=getattr(code_pb2, code.name), message=error.message, details=[detail])
    result: grpc.Status = rpc_status.to_status(status)
    return result


async def abort(
    context: grpc.aio.ServicerContext[object, object],
    error: errors.PipelineJobsError,
    extra_metadata: tuple[tuple[str, str], ...] = (),
) -> None:
    status = to_grpc_status(error)
    await context.abort(status.code, status.details, (*status.trailing_metadata, *extra_metadata))
