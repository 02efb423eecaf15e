"""The PipelineJobs client.

- ``JobsClient`` / ``AsyncJobsClient``: one typed method per RPC, typed exceptions, safe retries.
- ``pipelinejobs_client.errors``: the exceptions (``PipelineJobsError`` and its subclasses).
- ``pipelinejobs_client.api.v1``: the generated protobuf messages and gRPC stubs.
"""

from .aio import AsyncJobsClient
from .client import JobsClient
from .errors import (
    AdminRequired,
    CancelNotAllowed,
    DataTooLarge,
    IdempotencyConflict,
    InvalidArgument,
    InvalidToken,
    InvalidTransition,
    JobNotFound,
    PermissionDenied,
    PipelineJobsError,
    PipelineNotFound,
    ServiceUnavailable,
    TokenExpired,
    Unauthenticated,
    UnknownEvent,
)
from .retry import RetryPolicy

__all__ = [
    "AdminRequired",
    "AsyncJobsClient",
    "CancelNotAllowed",
    "DataTooLarge",
    "IdempotencyConflict",
    "InvalidArgument",
    "InvalidToken",
    "InvalidTransition",
    "JobNotFound",
    "JobsClient",
    "PermissionDenied",
    "PipelineJobsError",
    "PipelineNotFound",
    "RetryPolicy",
    "ServiceUnavailable",
    "TokenExpired",
    "Unauthenticated",
    "UnknownEvent",
]
