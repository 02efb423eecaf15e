"""Typed exceptions for the service's errors.

The server attaches a ``google.rpc.ErrorInfo`` (a stable ``reason`` and metadata) to every error; the
client maps the reason to one exception class, falling back on the gRPC status code. Catch
``PipelineJobsError`` for everything, or a subclass to branch.

Each class names the reason it stands for (``REASON``); ``BY_REASON`` is computed from those and the
server's reason tree in reasons.py (generated from the domain errors by ``make client``), so a reason the
server adds maps to the class of its nearest ancestor until it gets a class of its own.
"""

from __future__ import annotations

from typing import ClassVar, Final

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from .reasons import PARENT

DOMAIN: Final = "pipelinejobs.v1"


class PipelineJobsError(Exception):
    """Any error the service (or the connection to it) reported.

    ``reason`` is the reason the server sent ("" when it sent none); ``REASON``, on a subclass, is the
    reason of reasons.py that the class stands for.
    """

    REASON: ClassVar[str]

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
    REASON = "INVALID_ARGUMENT"

    @property
    def field(self) -> str:
        return self.metadata.get("field", "")


class UnknownEvent(InvalidArgument):
    REASON = "UNKNOWN_EVENT"


class DataTooLarge(PipelineJobsError):
    REASON = "DATA_TOO_LARGE"


class TooManyTokens(PipelineJobsError):
    """``CreateJob`` of a job that holds the maximum of live tokens (``.max_tokens``); none is pushed out."""

    REASON = "TOO_MANY_TOKENS"

    @property
    def max_tokens(self) -> int:
        return int(self.metadata.get("max_tokens", "0") or 0)


class NotFound(PipelineJobsError):
    REASON = "NOT_FOUND"


class JobNotFound(NotFound):
    REASON = "JOB_NOT_FOUND"


class PipelineNotFound(NotFound):
    REASON = "PIPELINE_NOT_FOUND"


class InvalidTransition(PipelineJobsError):
    """The state machine refused the event in the job's current state."""

    REASON = "INVALID_TRANSITION"

    @property
    def state(self) -> str:
        return self.metadata.get("state", "")

    @property
    def event(self) -> str:
        return self.metadata.get("event", "")


class CancelNotAllowed(PipelineJobsError):
    REASON = "CANCEL_NOT_ALLOWED"


class Unauthenticated(PipelineJobsError):
    REASON = "UNAUTHENTICATED"


class ApiKeyRequired(Unauthenticated):
    REASON = "API_KEY_REQUIRED"


class InvalidApiKey(Unauthenticated):
    REASON = "INVALID_API_KEY"


class TokenRequired(Unauthenticated):
    REASON = "TOKEN_REQUIRED"


class InvalidToken(Unauthenticated):
    REASON = "INVALID_TOKEN"


class TokenWithheld(TokenRequired):
    """Raised by the client, not sent by the service: an event needs the job's token, and this object has
    none, because the service withheld it (``CreateJob`` of a job another API key created). Caught as
    ``TokenRequired``, what the service would have answered."""

    def __init__(self, job_uuid: str) -> None:
        super().__init__(
            f"no token for job {job_uuid}: it was created with another API key, and the service gives "
            "fresh tokens only to that key (and admin keys). Use PipelineJob.attach() with a token its "
            "creator shares, or the creating key",
            code=grpc.StatusCode.UNAUTHENTICATED,
            reason="TOKEN_REQUIRED",
            metadata={"uuid": job_uuid},
        )


class TokenExpired(Unauthenticated):
    REASON = "TOKEN_EXPIRED"


class PermissionDenied(PipelineJobsError):
    REASON = "PERMISSION_DENIED"


class AdminRequired(PermissionDenied):
    REASON = "ADMIN_REQUIRED"


class Aborted(PipelineJobsError):
    """``ABORTED``: a conflict on the server's side. No reason of its own: it is known by its code."""


class IdempotencyConflict(Aborted):
    REASON = "IDEMPOTENCY_CONFLICT"


class ConcurrentModification(Aborted):
    REASON = "CONCURRENT_MODIFICATION"


class ServiceUnavailable(PipelineJobsError):
    """The service, or its database, cannot be reached; retrying later may succeed."""

    REASON = "UNAVAILABLE"


class WatchResume(ServiceUnavailable):
    """The server ended a watch before the job reached a state it waits for (the watch's maximum
    duration, or the server stopping): watch again after ``after_seq``. ``watch_job`` does so itself
    unless told not to (``resume=False``)."""

    REASON = "WATCH_RESUME"

    @property
    def after_seq(self) -> int:
        raw = self.metadata.get("after_seq", "")
        return int(raw) if raw.isdigit() else 0


class CursorExpired(PipelineJobsError):
    """A feed cursor older than the feed's retention: the entries after it were deleted. ``oldest_cursor``
    is the oldest one the feed still serves (resuming there skips what was deleted, knowingly)."""

    REASON = "CURSOR_EXPIRED"

    @property
    def oldest_cursor(self) -> str:
        return self.metadata.get("oldest_cursor", "")


class CursorUnknown(PipelineJobsError):
    """A feed cursor this feed never gave out: another installation's, or a database reset since."""

    REASON = "CURSOR_UNKNOWN"


class TooManyWatches(PipelineJobsError):
    """The API key, or the server, has as many watches open as it allows (``limit``): end one first.

    The reason says which cap: ``TOO_MANY_WATCHES_FOR_KEY`` or ``TOO_MANY_WATCHES_ON_SERVER``."""

    REASON = "TOO_MANY_WATCHES"

    @property
    def limit(self) -> int:
        raw = self.metadata.get("limit", "")
        return int(raw) if raw.isdigit() else 0


class EventQueueFull(PipelineJobsError):
    """The server has as many events waiting for their write as it queues (``limit``): send again shortly.
    Retried by the client's retry policy like ``ServiceUnavailable`` (every event carries its key)."""

    REASON = "EVENT_QUEUE_FULL"

    @property
    def limit(self) -> int:
        raw = self.metadata.get("limit", "")
        return int(raw) if raw.isdigit() else 0


class DeadlineExceeded(PipelineJobsError):
    """The call's deadline passed before the server answered (known by its code: no server sends it)."""


def _classes(cls: type[PipelineJobsError]) -> list[type[PipelineJobsError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _classes(child))]


def _by_reason() -> dict[str, type[PipelineJobsError]]:
    """Every reason of reasons.py to the class standing for it or, failing that, for its nearest ancestor."""
    own = {cls.REASON: cls for cls in _classes(PipelineJobsError) if "REASON" in vars(cls)}
    table: dict[str, type[PipelineJobsError]] = {}
    for reason in PARENT:
        ancestor: str | None = reason
        while ancestor is not None and ancestor not in own:
            ancestor = PARENT[ancestor]
        if ancestor is not None:
            table[reason] = own[ancestor]
    return table


# A reason no class stands for, not even through an ancestor (the root's INTERNAL), is left to BY_CODE.
BY_REASON: Final[dict[str, type[PipelineJobsError]]] = _by_reason()

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
    grpc.StatusCode.OUT_OF_RANGE: CursorExpired,
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
