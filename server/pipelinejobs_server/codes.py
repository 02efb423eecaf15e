"""One table from domain errors to status codes, used by gRPC and HTTP alike.

Lookups walk the error's MRO, so a subclass inherits its parent's codes unless it has its own row
(the pattern of starlette/_exception_handler.py). The gRPC API (api/errors.py) and both HTTP apps
(web/failures.py) read their codes here, so an HTTP answer never disagrees with the gRPC one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import grpc

from pipelinejobs_server.domain import errors


@dataclass(frozen=True)
class Codes:
    grpc: grpc.StatusCode
    http: int


TABLE: Final[dict[type[errors.PipelineJobsError], Codes]] = {
    errors.PipelineJobsError: Codes(grpc.StatusCode.INTERNAL, 500),
    errors.InvalidArgument: Codes(grpc.StatusCode.INVALID_ARGUMENT, 400),
    errors.DataTooLarge: Codes(grpc.StatusCode.RESOURCE_EXHAUSTED, 413),
    errors.TooManyTokens: Codes(grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    errors.NotFound: Codes(grpc.StatusCode.NOT_FOUND, 404),
    errors.InvalidTransition: Codes(grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.CancelNotAllowed: Codes(grpc.StatusCode.FAILED_PRECONDITION, 409),
    errors.Unauthenticated: Codes(grpc.StatusCode.UNAUTHENTICATED, 401),
    errors.PermissionDenied: Codes(grpc.StatusCode.PERMISSION_DENIED, 403),
    errors.IdempotencyConflict: Codes(grpc.StatusCode.ABORTED, 409),
    errors.ConcurrentModification: Codes(grpc.StatusCode.ABORTED, 409),
    errors.Unavailable: Codes(grpc.StatusCode.UNAVAILABLE, 503),
    errors.TooManyWatches: Codes(grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    errors.EventQueueFull: Codes(grpc.StatusCode.RESOURCE_EXHAUSTED, 429),
    errors.CursorExpired: Codes(grpc.StatusCode.OUT_OF_RANGE, 410),
    errors.CursorUnknown: Codes(grpc.StatusCode.FAILED_PRECONDITION, 409),
}


def codes_for(error: errors.PipelineJobsError) -> Codes:
    for cls in type(error).__mro__:
        if cls in TABLE:
            return TABLE[cls]
    return TABLE[errors.PipelineJobsError]


def _reasons(cls: type[errors.PipelineJobsError]) -> dict[str, type[errors.PipelineJobsError]]:
    found = {cls.reason: cls}
    for subclass in cls.__subclasses__():
        # setdefault: a subclass that does not set its own reason keeps its parent's row.
        for reason, match in _reasons(subclass).items():
            found.setdefault(reason, match)
    return found


# Codes a gRPC client sees when no server answered in time; they mean what UNAVAILABLE means.
_NO_ANSWER: Final = frozenset({grpc.StatusCode.DEADLINE_EXCEEDED})


def codes_for_reported(reason: str, code: grpc.StatusCode) -> Codes:
    """The row for an error a gRPC client received (e.g. the HTTP shim relaying a call).

    By its ErrorInfo ``reason`` first: the domain error class with that reason, walked along its MRO
    like ``codes_for``. Without a known reason (the call never reached our handlers: the server is
    down, a proxy refused it), the most general row with the same gRPC code. Read off TABLE, so HTTP
    answers can never drift from the gRPC ones.
    """
    cls = _reasons(errors.PipelineJobsError).get(reason) if reason else None
    if cls is not None:
        for klass in cls.__mro__:
            if klass in TABLE:
                return TABLE[klass]
    if code in _NO_ANSWER:
        return TABLE[errors.Unavailable]
    for row in TABLE.values():
        if row.grpc == code:
            return row
    return TABLE[errors.PipelineJobsError]


def http_status(reason: str, code: grpc.StatusCode) -> int:
    """The HTTP status for an error a gRPC client received, from TABLE."""
    return codes_for_reported(reason, code).http
