"""Domain errors. They carry no transport codes: the table in codes.py maps them, once,
for gRPC and HTTP alike. Each has a stable machine-readable ``reason`` and string ``metadata``."""

from __future__ import annotations


class PipelineJobsError(Exception):
    reason = "INTERNAL"

    def __init__(self, message: str, **metadata: str) -> None:
        super().__init__(message)
        self.message = message
        self.metadata = metadata


class InvalidArgument(PipelineJobsError):
    reason = "INVALID_ARGUMENT"


class UnknownEvent(InvalidArgument):
    reason = "UNKNOWN_EVENT"


class DataTooLarge(PipelineJobsError):
    reason = "DATA_TOO_LARGE"


class TooManyTokens(PipelineJobsError):
    """The job holds the maximum of live tokens; a new one would have to push a live one out."""

    reason = "TOO_MANY_TOKENS"


class NotFound(PipelineJobsError):
    reason = "NOT_FOUND"


class JobNotFound(NotFound):
    reason = "JOB_NOT_FOUND"

    def __init__(self, job_uuid: str) -> None:
        super().__init__(f"job {job_uuid} not found", uuid=job_uuid)


class PipelineNotFound(NotFound):
    reason = "PIPELINE_NOT_FOUND"

    def __init__(self, pipeline_uuid: str) -> None:
        super().__init__(f"pipeline {pipeline_uuid} not found", uuid=pipeline_uuid)


class InvalidTransition(PipelineJobsError):
    reason = "INVALID_TRANSITION"

    def __init__(self, message: str, *, state: str, event: str) -> None:
        super().__init__(message, state=state, event=event)


class CancelNotAllowed(PipelineJobsError):
    reason = "CANCEL_NOT_ALLOWED"


class Unauthenticated(PipelineJobsError):
    reason = "UNAUTHENTICATED"


class ApiKeyRequired(Unauthenticated):
    reason = "API_KEY_REQUIRED"


class InvalidApiKey(Unauthenticated):
    reason = "INVALID_API_KEY"


class TokenRequired(Unauthenticated):
    reason = "TOKEN_REQUIRED"


class InvalidToken(Unauthenticated):
    reason = "INVALID_TOKEN"

    @classmethod
    def for_job(cls, job_uuid: str) -> InvalidToken:
        """The one answer to a token that does not open ``job_uuid``, whether or not the job exists."""
        return cls("the job token is not valid for this job", uuid=job_uuid)


class TokenExpired(Unauthenticated):
    reason = "TOKEN_EXPIRED"


class PermissionDenied(PipelineJobsError):
    reason = "PERMISSION_DENIED"


class AdminRequired(PermissionDenied):
    reason = "ADMIN_REQUIRED"


class IdempotencyConflict(PipelineJobsError):
    reason = "IDEMPOTENCY_CONFLICT"


class ConcurrentModification(PipelineJobsError):
    reason = "CONCURRENT_MODIFICATION"


class Unavailable(PipelineJobsError):
    reason = "UNAVAILABLE"


class DatabaseUnavailable(Unavailable):
    reason = "DATABASE_UNAVAILABLE"


class WatchResume(Unavailable):
    """A watch the server ended (its maximum duration, or the server stopping): resume after ``after_seq``.

    UNAVAILABLE, which every gRPC client's retry policy treats as "try again", never OK: an OK end of a
    watch means the job reached a state the caller waits for."""

    reason = "WATCH_RESUME"

    def __init__(self, after_seq: int, why: str) -> None:
        super().__init__(
            f"the watch ended ({why}); resume with after_seq={after_seq}", after_seq=str(after_seq), why=why
        )

    @classmethod
    def at_cursor(cls, after_cursor: str, why: str) -> WatchResume:
        """The same end for a WatchEvents stream: resume after the feed cursor ``after_cursor``."""
        error = cls.__new__(cls)
        PipelineJobsError.__init__(
            error,
            f"the watch ended ({why}); resume with after_cursor={after_cursor}",
            after_cursor=after_cursor,
            why=why,
        )
        return error


class CursorExpired(PipelineJobsError):
    """A feed cursor older than the retention: the entries after it were deleted. ``oldest_cursor`` is the
    oldest one still served (resuming there skips what was deleted, knowingly)."""

    reason = "CURSOR_EXPIRED"

    def __init__(self, message: str, *, oldest_cursor: str) -> None:
        super().__init__(message, oldest_cursor=oldest_cursor)


class CursorUnknown(PipelineJobsError):
    """A well-formed feed cursor that this feed never gave out: another installation's, or a database
    that was reset or restored from an older backup."""

    reason = "CURSOR_UNKNOWN"


class TooManyWatches(PipelineJobsError):
    reason = "TOO_MANY_WATCHES"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message, limit=str(limit))


class TooManyWatchesForKey(TooManyWatches):
    reason = "TOO_MANY_WATCHES_FOR_KEY"


class TooManyWatchesOnServer(TooManyWatches):
    reason = "TOO_MANY_WATCHES_ON_SERVER"


class EventQueueFull(PipelineJobsError):
    """The server's queue of events waiting for their batch write is full (DESIGN §6a): retry shortly."""

    reason = "EVENT_QUEUE_FULL"

    def __init__(self, message: str, *, limit: int) -> None:
        super().__init__(message, limit=str(limit))
