"""The PipelineJobs client.

- ``JobsClient`` / ``AsyncJobsClient``: one typed method per RPC, typed exceptions, safe retries. The
  asyncio client (aio.py) is the definition; the blocking one (client.py) is generated from it.
- ``PipelineJob``: the seed's reactor-side API (``PipelineJob(rx, lab, experiment, sample).setup().run()``),
  configured by ``load_config`` from a reactor's ``pipelines`` settings, ``config.yml`` and ``secrets.json``.
- ``pipelinejobs_client.errors``: the exceptions (``PipelineJobsError`` and its subclasses).
- ``pipelinejobs_client.names``: enum values and their short names (``RUNNING``, ``run``, ``grpc``);
  ``pipelinejobs_client.views``: messages as the plain JSON values the CLI prints.
- ``ClientTls``: TLS from files (a CA, a client certificate and key, the name to check), for ``tls=``.
- ``pipelinejobs_client.api.v1``: the generated protobuf messages and gRPC stubs.
"""

from .aio import AsyncJobsClient
from .client import JobsClient
from .config import ClientConfig, ConfigurationError, load_config
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
    TokenRequired,
    TokenWithheld,
    TooManyTokens,
    Unauthenticated,
    UnknownEvent,
)
from .pipelinejob import PipelineJob
from .retry import RetryPolicy
from .tls import ClientTls
from .tokens import token_id

__all__ = [
    "AdminRequired",
    "AsyncJobsClient",
    "CancelNotAllowed",
    "ClientConfig",
    "ClientTls",
    "ConfigurationError",
    "DataTooLarge",
    "IdempotencyConflict",
    "InvalidArgument",
    "InvalidToken",
    "InvalidTransition",
    "JobNotFound",
    "JobsClient",
    "PermissionDenied",
    "PipelineJob",
    "PipelineJobsError",
    "PipelineNotFound",
    "RetryPolicy",
    "ServiceUnavailable",
    "TokenExpired",
    "TokenRequired",
    "TokenWithheld",
    "TooManyTokens",
    "Unauthenticated",
    "UnknownEvent",
    "load_config",
    "token_id",
]
