"""Typed exceptions for the service's errors.

The server attaches a ``google.rpc.ErrorInfo`` (a stable ``reason`` and metadata) to every error; the
client maps the reason to one exception class, falling back on the gRPC status code. Catch
``PipelineJobsError`` for everything, or a subclass to branch.
"""

from __future__ import annotations

from typing import Final

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DOMAIN: Final = "pipelinejobs.v1"


class PipelineJobsError(Exception):
    """Any error the service (or the connection to it) reported."""

    def __init__(
        self,
        message: str,
        *,
        code: grpc.StatusCode = grpc.StatusCode.UNKNOWN,
        reason: str = "",
        metadata: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.reason = reason
        self.metadata = dict(metadata or {})

    def __str__(self) -> str:
        return f"{self.reason or self.code.name}: {self.message}"


class InvalidArgument(PipelineJobsError):
    @property
    def field(self) -> str:
        return self.metadata.get("field", "")


class UnknownEvent(InvalidArgument):
    pass


class DataTooLarge(PipelineJobsError):
    pass


class NotFound(PipelineJobsError):
    pass


class JobNotFound(NotFound):
    pass


class PipelineNotFound(NotFound):
    pass


class InvalidTransition(PipelineJobsError):
    """The state machine refused the event in the job's current state."""

    @property
    def state(self) -> str:
        return self.metadata.get("state", "")

    @property
    def event(self) -> str:
        return self.metadata.get("event", "")


class CancelNotAllowed(PipelineJobsError):
    pass


class Unauthenticated(PipelineJobsError):
    pass


class ApiKeyRequired(Unauthenticated):
    pass


class InvalidApiKey(Unauthenticated):
    pass


class TokenRequired(Unauthenticated):
    pass


class InvalidToken(Unauthenticated):
    pass


class TokenExpired(Unauthenticated):
    pass


class PermissionDenied(PipelineJobsError):
    pass


class AdminRequired(PermissionDenied):
    pass


class Aborted(PipelineJobsError):
    pass


class IdempotencyConflict(Aborted):
    pass


class ConcurrentModification(Aborted):
    pass


class ServiceUnavailable(PipelineJobsError):
    """The service, or its database, cannot be reached; retrying later may succeed."""


class DeadlineExceeded(PipelineJobsError):
    pass


BY_REASON: Final[dict[str, type[PipelineJobsError]]] = {
    "INVALID_ARGUMENT": InvalidArgument,
    "UNKNOWN_EVENT": UnknownEvent,
    "DATA_TOO_LARGE": DataTooLarge,
    "NOT_FOUND": NotFound,
    "JOB_NOT_FOUND": JobNotFound,
    "PIPELINE_NOT_FOUND": PipelineNotFound,
    "INVALID_TRANSITION": InvalidTransition,
    "CANCEL_NOT_ALLOWED": CancelNotAllowed,
    "UNAUTHENTICATED": Unauthenticated,
    "API_KEY_REQUIRED": ApiKeyRequired,
    "INVALID_API_KEY": InvalidApiKey,
    "TOKEN_REQUIRED": TokenRequired,
    "INVALID_TOKEN": InvalidToken,
    "TOKEN_EXPIRED": TokenExpired,
    "PERMISSION_DENIED": PermissionDenied,
    "ADMIN_REQUIRED": AdminRequired,
    "IDEMPOTENCY_CONFLICT": IdempotencyConflict,
    "CONCURRENT_MODIFICATION": ConcurrentModification,
    "UNAVAILABLE": ServiceUnavailable,
    "DATABASE_UNAVAILABLE": ServiceUnavailable,
}

BY_CODE: Final[dict[grpc.StatusCode, type[PipelineJobsError]]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.RESOURCE_EXHAUSTED: DataTooLarge,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: InvalidTransition,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.ABORTED: Aborted,
    grpc.StatusCode.UNAVAILABLE: ServiceUnavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_info(error: grpc.Call) -> error_details_pb2.ErrorInfo | None:
    """The ErrorInfo detail the service attached to a failed call, if any."""
    try:
        status = rpc_status.from_call(error)
    except ValueError:
        return None
    if status is None:
        return None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Is(info.DESCRIPTOR) and detail.Unpack(info):
            return info
    return None


def from_rpc_error(error: grpc.RpcError) -> PipelineJobsError:
    """The typed exception for a failed call."""
    call: grpc.Call = error  # type: ignore[assignment]  # every RpcError raised by a stub is also a Call
    code = call.code()
    message = call.details() or code.name
    info = error_info(call)
    reason = info.reason if info is not None and info.domain == DOMAIN else ""
    metadata = dict(info.metadata) if info is not None else {}
    cls = BY_REASON.get(reason) or BY_CODE.get(code, PipelineJobsError)
    return cls(message, code=code, reason=reason, metadata=metadata)
