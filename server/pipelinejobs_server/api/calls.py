"""What every RPC does around its handler: find the caller, map domain errors, log without secrets."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc

from pipelinejobs_server import logs
from pipelinejobs_server.domain.errors import InvalidArgument, PipelineJobsError
from pipelinejobs_server.service.credentials import Credentials, Principal

from .decoding import UndecodableRequest
from .errors import abort, codes_for
from .metrics import ServerMetrics

log = logging.getLogger("pipelinejobs.rpc")

Request = TypeVar("Request")
Response = TypeVar("Response")
Context = grpc.aio.ServicerContext[Any, Any]
Handler = Callable[[Any, Request, Context, Principal | None], Awaitable[Response]]
StreamHandler = Callable[[Any, Request, Context, Principal | None], AsyncIterator[Response]]


def api_key(context: Context) -> str | None:
    """The API key from 'authorization: Bearer <key>' (or 'x-api-key') metadata."""
    for key, value in context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, credential = value.partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
        if key == "x-api-key" and isinstance(value, str) and value:
            return value
    return None


class HasCredentials:
    """What the wrappers need from a servicer."""

    credentials: Credentials
    metrics: ServerMetrics


def _begin(context: Context) -> str:
    """The call's request id: set for every log line of the call, and returned to the caller."""
    presented = next(
        (value for key, value in context.invocation_metadata() or () if key == "x-request-id"), None
    )
    request_id = logs.request_id(presented if isinstance(presented, str) else None)
    logs.REQUEST_ID.set(request_id)
    context.set_trailing_metadata((("x-request-id", request_id),))
    return request_id


def _principal(self: HasCredentials, request: object, method: str, context: Context) -> Principal | None:
    if isinstance(request, UndecodableRequest):
        raise InvalidArgument(
            f"the request is not a valid {method} message: {request.reason}", field="request"
        )
    return self.credentials.authenticate(api_key(context))


async def _fail(
    self: HasCredentials, context: Context, method: str, request_id: str, started: float, error: Exception
) -> None:
    """Abort the call with the error's status; always raises."""
    code = codes_for(error).grpc if isinstance(error, PipelineJobsError) else grpc.StatusCode.INTERNAL
    self.metrics.observe_call(method, code, _ms(started) / 1000)
    if isinstance(error, PipelineJobsError):
        # Messages and metadata never hold tokens or keys, so they are safe to log.
        log.info(
            "rpc=%s request_id=%s code=%s reason=%s ms=%.1f",
            method, request_id, codes_for(error).grpc.name, error.reason, _ms(started),
        )  # fmt: skip
        await abort(context, error, (("x-request-id", request_id),))
    log.error("rpc=%s request_id=%s code=INTERNAL", method, request_id, exc_info=error)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})", (("x-request-id", request_id),)
    )


def rpc(handler: Handler[Request, Response]) -> Callable[[Any, Request, Context], Awaitable[Response]]:
    """Wrap a unary servicer method: authenticate, call, and turn domain errors into rich statuses."""
    method = handler.__name__

    @functools.wraps(handler)
    async def wrapper(self: HasCredentials, request: Request, context: Context) -> Response:
        request_id, started = _begin(context), time.perf_counter()
        try:
            response = await handler(self, request, context, _principal(self, request, method, context))
        except Exception as error:
            await _fail(self, context, method, request_id, started, error)
            raise AssertionError("unreachable: abort raises") from error
        self.metrics.observe_call(method, grpc.StatusCode.OK, _ms(started) / 1000)
        log.debug("rpc=%s request_id=%s code=OK ms=%.1f", method, request_id, _ms(started))
        return response

    return wrapper


def rpc_stream(
    handler: StreamHandler[Request, Response],
) -> Callable[[Any, Request, Context], AsyncIterator[Response]]:
    """``rpc`` for server-streaming methods (async generators)."""
    method = handler.__name__

    @functools.wraps(handler)
    async def wrapper(self: HasCredentials, request: Request, context: Context) -> AsyncIterator[Response]:
        request_id, started = _begin(context), time.perf_counter()
        try:
            async for response in handler(self, request, context, _principal(self, request, method, context)):
                yield response
        except Exception as error:
            await _fail(self, context, method, request_id, started, error)
            raise AssertionError("unreachable: abort raises") from error
        self.metrics.observe_call(method, grpc.StatusCode.OK, None)  # a stream's length says nothing
        log.debug("rpc=%s request_id=%s code=OK ms=%.1f", method, request_id, _ms(started))

    return wrapper


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
