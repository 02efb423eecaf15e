"""Errors at the HTTP edge and the JSON answers for them, for the shim and the dashboard alike.

An app's own refusals are domain errors (subclasses of the server's), and errors reported by the server
arrive as the client's typed exceptions; both get their HTTP status from the one table in
pipelinejobs_server/codes.py, so an HTTP answer always agrees with the gRPC code the same failure has.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.codes import codes_for, http_status
from pipelinejobs_server.domain import errors

from .logs import redact


class Misconfigured(errors.PipelineJobsError):
    """The app cannot work safely as configured (e.g. it holds an admin key); the operator must fix it."""

    # The reason predates the dashboard's own app; clients and tests branch on it, so it stays.
    reason = "SHIM_MISCONFIGURED"


@dataclass(frozen=True)
class Failure:
    status: int
    reason: str
    message: str
    metadata: Mapping[str, str]

    def response(self, secrets: Iterable[str] = ()) -> JSONResponse:
        # Messages never quote a token by construction; redacting anyway costs nothing.
        secrets = tuple(secrets)
        body = {
            "error": {
                "status": self.status,
                "reason": self.reason,
                "message": redact(self.message, secrets),
                "metadata": {key: redact(value, secrets) for key, value in self.metadata.items()},
            }
        }
        headers = {"Retry-After": "5"} if self.status == 503 else None
        return JSONResponse(body, status_code=self.status, headers=headers)


def failure(error: Exception) -> Failure:
    """The HTTP answer for an app's own refusal or an error the server reported."""
    if isinstance(error, errors.PipelineJobsError):
        return Failure(codes_for(error).http, error.reason, error.message, dict(error.metadata))
    if isinstance(error, client_errors.PipelineJobsError):
        reason = error.reason or error.code.name
        return Failure(http_status(error.reason, error.code), reason, error.message, dict(error.metadata))
    raise TypeError(f"not a PipelineJobs error: {type(error).__name__}")


async def http_error(request: Request, error: Exception) -> Response:
    """Routing errors (unknown path, wrong method) as JSON, like every other answer."""
    assert isinstance(error, HTTPException)
    reason = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(error.status_code, "HTTP_ERROR")
    return Failure(error.status_code, reason, str(error.detail), {}).response()
