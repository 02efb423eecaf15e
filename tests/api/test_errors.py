"""The error table (api/errors.py): every domain error's gRPC code and HTTP status, and rich details."""

from __future__ import annotations

import inspect

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2

from pipelinejobs_server.api import errors as api_errors
from pipelinejobs_server.api.errors import DOMAIN, to_grpc_status
from pipelinejobs_server.codes import TABLE, Codes, codes_for
from pipelinejobs_server.domain import errors

S = grpc.StatusCode

# Errors whose constructors take something other than (message, **metadata).
SPECIAL: dict[type[errors.PipelineJobsError], errors.PipelineJobsError] = {
    errors.JobNotFound: errors.JobNotFound("0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11"),
    errors.PipelineNotFound: errors.PipelineNotFound("11111111-2222-5333-8444-555555555555"),
    errors.InvalidTransition: errors.InvalidTransition("no", state="RUNNING", event="ready"),
    errors.WatchResume: errors.WatchResume(7, "the server is stopping"),
    errors.CursorExpired: errors.CursorExpired("too old", oldest_cursor="cursor"),
    errors.TooManyWatches: errors.TooManyWatches("too many", limit=3),
    errors.TooManyWatchesForKey: errors.TooManyWatchesForKey("too many", limit=3),
    errors.TooManyWatchesOnServer: errors.TooManyWatchesOnServer("too many", limit=3),
    errors.EventQueueFull: errors.EventQueueFull("queue full", limit=3),
}


def instance(cls: type[errors.PipelineJobsError]) -> errors.PipelineJobsError:
    return SPECIAL[cls] if cls in SPECIAL else cls("something went wrong")


def domain_error_classes() -> list[type[errors.PipelineJobsError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.PipelineJobsError)
        and cls is not errors.PipelineJobsError
        and cls.__module__ == errors.__name__
    ]


EXPECTED: list[tuple[type[errors.PipelineJobsError], grpc.StatusCode, int]] = [
    (errors.InvalidArgument, S.INVALID_ARGUMENT, 400),
    (errors.UnknownEvent, S.INVALID_ARGUMENT, 400),
    (errors.DataTooLarge, S.RESOURCE_EXHAUSTED, 413),
    (errors.TooManyTokens, S.RESOURCE_EXHAUSTED, 429),
    (errors.NotFound, S.NOT_FOUND, 404),
    (errors.JobNotFound, S.NOT_FOUND, 404),
    (errors.PipelineNotFound, S.NOT_FOUND, 404),
    (errors.InvalidTransition, S.FAILED_PRECONDITION, 409),
    (errors.CancelNotAllowed, S.FAILED_PRECONDITION, 409),
    (errors.Unauthenticated, S.UNAUTHENTICATED, 401),
    (errors.ApiKeyRequired, S.UNAUTHENTICATED, 401),
    (errors.InvalidApiKey, S.UNAUTHENTICATED, 401),
    (errors.TokenRequired, S.UNAUTHENTICATED, 401),
    (errors.InvalidToken, S.UNAUTHENTICATED, 401),
    (errors.TokenExpired, S.UNAUTHENTICATED, 401),
    (errors.PermissionDenied, S.PERMISSION_DENIED, 403),
    (errors.AdminRequired, S.PERMISSION_DENIED, 403),
    (errors.IdempotencyConflict, S.ABORTED, 409),
    (errors.ConcurrentModification, S.ABORTED, 409),
    (errors.Unavailable, S.UNAVAILABLE, 503),
    (errors.DatabaseUnavailable, S.UNAVAILABLE, 503),
    (errors.WatchResume, S.UNAVAILABLE, 503),
    (errors.CursorExpired, S.OUT_OF_RANGE, 410),
    (errors.CursorUnknown, S.FAILED_PRECONDITION, 409),
    (errors.TooManyWatches, S.RESOURCE_EXHAUSTED, 429),
    (errors.TooManyWatchesForKey, S.RESOURCE_EXHAUSTED, 429),
    (errors.TooManyWatchesOnServer, S.RESOURCE_EXHAUSTED, 429),
    (errors.EventQueueFull, S.RESOURCE_EXHAUSTED, 429),
]


@pytest.mark.parametrize(
    ("cls", "grpc_code", "http_status"),
    EXPECTED,
    ids=[f"{cls.__name__}->{code.name}/{status}" for cls, code, status in EXPECTED],
)
def test_codes(cls: type[errors.PipelineJobsError], grpc_code: grpc.StatusCode, http_status: int) -> None:
    assert codes_for(instance(cls)) == Codes(grpc_code, http_status)


def test_expected_table_covers_every_domain_error() -> None:
    # A new domain error must be added to EXPECTED above, with the codes it is meant to have.
    assert {cls for cls, _, _ in EXPECTED} == set(domain_error_classes())


@pytest.mark.parametrize("cls", domain_error_classes(), ids=lambda cls: cls.__name__)
def test_every_domain_error_has_a_row(cls: type[errors.PipelineJobsError]) -> None:
    fallback = TABLE[errors.PipelineJobsError]
    assert codes_for(instance(cls)) != fallback
    assert codes_for(instance(cls)).grpc is not S.INTERNAL


def test_the_base_error_is_internal() -> None:
    assert codes_for(errors.PipelineJobsError("boom")) == Codes(S.INTERNAL, 500)


def test_lookup_walks_the_mro() -> None:
    class Unlisted(errors.TokenExpired):
        reason = "UNLISTED"

    class Stray(errors.PipelineJobsError):
        pass

    assert codes_for(Unlisted("late")) == Codes(S.UNAUTHENTICATED, 401)
    assert codes_for(Stray("?")) == Codes(S.INTERNAL, 500)


def test_every_grpc_code_has_a_google_rpc_code() -> None:
    for codes in TABLE.values():
        assert getattr(code_pb2, codes.grpc.name) == codes.grpc.value[0]


def test_reasons_are_distinct() -> None:
    reasons = [cls.reason for cls in domain_error_classes()]
    assert len(reasons) == len(set(reasons))


def decode_details(status: grpc.Status) -> status_pb2.Status:
    trailers = dict(status.trailing_metadata)
    assert set(trailers) == {"grpc-status-details-bin"}
    raw = trailers["grpc-status-details-bin"]
    assert isinstance(raw, bytes)
    decoded = status_pb2.Status()
    decoded.ParseFromString(raw)
    return decoded


def error_info(decoded: status_pb2.Status) -> error_details_pb2.ErrorInfo:
    assert len(decoded.details) == 1
    info = error_details_pb2.ErrorInfo()
    assert decoded.details[0].Unpack(info)
    return info


def test_grpc_status_carries_error_info() -> None:
    error = errors.InvalidTransition(
        "event 'ready' is not allowed in state RUNNING", state="RUNNING", event="ready"
    )
    status = to_grpc_status(error)
    assert status.code is S.FAILED_PRECONDITION
    assert status.details == "event 'ready' is not allowed in state RUNNING"

    decoded = decode_details(status)
    assert decoded.code == code_pb2.FAILED_PRECONDITION
    assert decoded.message == error.message
    info = error_info(decoded)
    assert info.reason == "INVALID_TRANSITION"
    assert info.domain == "pipelinejobs.v1"
    assert dict(info.metadata) == {"state": "RUNNING", "event": "ready"}


def test_grpc_status_of_an_error_without_metadata() -> None:
    status = to_grpc_status(errors.TokenExpired("the job token has expired"))
    assert status.code is S.UNAUTHENTICATED
    info = error_info(decode_details(status))
    assert info.reason == "TOKEN_EXPIRED"
    assert info.domain == DOMAIN
    assert dict(info.metadata) == {}


def test_grpc_status_keeps_non_ascii_messages() -> None:
    error = errors.InvalidArgument("session 'ünï' is not allowed", field="session")
    decoded = decode_details(to_grpc_status(error))
    assert decoded.message == error.message
    assert dict(error_info(decoded).metadata) == {"field": "session"}


@pytest.mark.parametrize("cls", domain_error_classes(), ids=lambda cls: cls.__name__)
def test_grpc_status_for_every_domain_error(cls: type[errors.PipelineJobsError]) -> None:
    error = instance(cls)
    status = to_grpc_status(error)
    assert status.code is codes_for(error).grpc
    decoded = decode_details(status)
    assert decoded.code == status.code.value[0]
    info = error_info(decoded)
    assert info.reason == cls.reason
    assert info.domain == DOMAIN
    assert dict(info.metadata) == error.metadata


def test_domain_constant() -> None:
    assert api_errors.DOMAIN == "pipelinejobs.v1"
