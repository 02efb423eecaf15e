"""The shim's ASGI app: routes, one request path for every delivery, health, metrics and OpenAPI.

Every delivery endpoint runs through ``Shim._answer``: parse, relay over gRPC, answer 2xx with the
outcome or the error's status from the shared table, count it, and never let a secret into a log
line or an error body.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import grpc
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from pipelinejobs_client import AsyncJobsClient
from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.domain import errors
from pipelinejobs_server.web import feed_stream
from pipelinejobs_server.web.body import read_limited
from pipelinejobs_server.web.failures import Failure, failure, http_error
from pipelinejobs_server.web.headers import NOSNIFF, DefaultHeaders
from pipelinejobs_server.web.logs import AccessLog, install_redaction

from . import callbacks, messages
from .body import json_object
from .metrics import Metrics
from .openapi import document
from .relay import Outcome, Relay
from .settings import ShimSettings

log = logging.getLogger("pipelinejobs.shim")

Work = Callable[[Relay], Awaitable[Outcome]]
_ERRORS = (errors.PipelineJobsError, client_errors.PipelineJobsError)


class Shim:
    def __init__(self, settings: ShimSettings) -> None:
        settings.validate()  # above all: without its secret, the shim's idempotency keys are guessable
        self.settings = settings
        self._secret = settings.callback_key_secret.encode()
        self.metrics = Metrics()
        self._relay: Relay | None = None
        self._openapi = document()

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        # Channels are made inside the serving loop: grpc.aio binds a channel to the loop it starts on.
        self._relay = Relay(self.settings)
        try:
            yield
        finally:
            await self._relay.close()
            self._relay = None

    @property
    def relay(self) -> Relay:
        if self._relay is None:
            raise errors.Unavailable("the shim is not started")
        return self._relay

    def _secrets(self, request: Request) -> list[str]:
        params = request.query_params
        return [
            *params.getlist("token"),
            *params.getlist("x-nonce"),
            self.settings.callback_nonce,
            self.settings.callback_key_secret,
        ]

    async def _answer(self, request: Request, endpoint: str, kind: str, work: Work) -> Response:
        started = time.perf_counter()
        status = request.query_params.get("status", "")
        try:
            outcome = await work(self.relay)
        except _ERRORS as error:
            answer = failure(error)
        except ClientDisconnect:
            answer = Failure(400, "CLIENT_DISCONNECTED", "the client went away mid-request", {})
        except Exception:
            # Never the message: it might quote a payload. The traceback goes through RedactingFilter.
            log.exception("unexpected error on %s", endpoint)
            answer = Failure(500, "INTERNAL", "internal error in the callback shim", {})
        else:
            label = (outcome.status if kind != "event" else outcome.event) or ""
            self.metrics.observe(endpoint, kind, label, outcome.outcome, 200, time.perf_counter() - started)
            return JSONResponse(outcome.body())
        if answer.status >= 500:
            log.warning("%s answered %d %s: %s", endpoint, answer.status, answer.reason, answer.message)
        self.metrics.observe(endpoint, kind, status, "error", answer.status, time.perf_counter() - started)
        return answer.response(self._secrets(request))

    # -- delivery endpoints -----------------------------------------------------------------------

    async def agave(self, request: Request) -> Response:
        if request.method == "HEAD":
            # Starlette adds HEAD to every GET route; here a GET changes state, so a link checker's
            # or a proxy's HEAD must not.
            return Failure(405, "METHOD_NOT_ALLOWED", "Method Not Allowed", {}).response()
        return await self._answer(request, "agave", "agave", self._agave_work(request))

    def _agave_work(self, request: Request) -> Work:
        async def work(relay: Relay) -> Outcome:
            callback = await callbacks.agave(
                request, self.settings.callback_nonce, self.settings.max_body_bytes, self._secret
            )
            return await callbacks.deliver(relay, callback)

        return work

    async def tapis(self, request: Request) -> Response:
        async def work(relay: Relay) -> Outcome:
            callback = await callbacks.tapis(
                request, self.settings.callback_nonce, self.settings.max_body_bytes, self._secret
            )
            return await callbacks.deliver(relay, callback)

        return await self._answer(request, "tapis", "tapis", work)

    async def event(self, request: Request) -> Response:
        return await self._answer(request, "events", "event", self._event_work(request, envelope=False))

    def _event_work(self, request: Request, *, envelope: bool) -> Work:
        async def work(relay: Relay) -> Outcome:
            message = json_object(
                await read_limited(request, self.settings.max_body_bytes), "a PipelineJobEvent"
            )
            if envelope:
                message = messages.unwrap(message)
            return await relay.send(messages.delivery(message))

        return work

    async def actors(self, request: Request) -> Response:
        """The seed's Abaco URL: its query string decides which of the two forms this is."""
        if "status" in request.query_params:
            return await self._answer(request, "actors", "agave", self._agave_work(request))
        return await self._answer(request, "actors", "event", self._event_work(request, envelope=True))

    # -- the event feed ---------------------------------------------------------------------------

    async def feed_events(self, request: Request) -> Response:
        """The event feed as Server-Sent Events (docs/events.md), for programs holding a client key: the
        shim relays callbacks with job tokens alone, so the caller's own key opens the feed, sent on as
        is (``Authorization: Bearer <key>``). ``Last-Event-ID`` or ``?after=`` resumes."""
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            return Failure(
                401, "API_KEY_REQUIRED", "the feed needs a client key: 'Authorization: Bearer <key>'", {}
            ).response()
        chosen = feed_stream.filters(request.query_params)
        cursor = feed_stream.resume_cursor(request.headers, request.query_params)
        client = AsyncJobsClient(self.settings.server, api_key=key.strip(), tls=self.settings.tls or False)
        try:
            # A bad key, cursor or filter: answered now, before the stream's 200 has gone out.
            await client.list_events(after_cursor=cursor, page_size=1, **chosen)
        except _ERRORS as error:
            await client.close()
            return failure(error).response([key])

        async def body() -> AsyncIterator[str]:
            try:
                async for chunk in feed_stream.stream(client, cursor, chosen):
                    yield chunk
            finally:
                await client.close()

        return StreamingResponse(
            body(),
            media_type="text/event-stream",
            headers={"cache-control": "no-store", "x-accel-buffering": "no"},
        )

    # -- operations -------------------------------------------------------------------------------

    async def healthz(self, request: Request) -> Response:
        try:
            serving = await self.relay.serving()
            await self.relay.verify_key()
        except grpc.RpcError as error:
            code = error.code() if isinstance(error, grpc.aio.AioRpcError) else grpc.StatusCode.UNKNOWN
            return JSONResponse({"ready": False, "server": code.name}, status_code=503)
        except _ERRORS as error:
            answer = failure(error)
            return JSONResponse(
                {"ready": False, "server": answer.reason, "message": answer.message}, status_code=503
            )
        ready = serving == "SERVING"
        return JSONResponse({"ready": ready, "server": serving}, status_code=200 if ready else 503)

    async def prometheus(self, request: Request) -> Response:
        payload, content_type = self.metrics.render()
        return Response(payload, media_type=content_type)

    async def openapi(self, request: Request) -> Response:
        return JSONResponse(self._openapi)


def create_app(settings: ShimSettings) -> Starlette:
    install_redaction()
    shim = Shim(settings)
    routes = [
        Route("/v1/callbacks/agave", shim.agave, methods=["GET", "POST"]),
        Route("/v1/callbacks/tapis", shim.tapis, methods=["POST"]),
        Route("/v1/events", shim.event, methods=["POST"]),
        Route("/v1/feed/events", shim.feed_events, methods=["GET"]),
        Route("/actors/v2/{manager_id}/messages", shim.actors, methods=["POST"]),
        Route("/healthz", shim.healthz, methods=["GET"]),
        Route("/metrics", shim.prometheus, methods=["GET"]),
        Route("/openapi.json", shim.openapi, methods=["GET"]),
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AccessLog, logger="pipelinejobs.shim.access"),
            Middleware(DefaultHeaders, headers=NOSNIFF),
        ],
        exception_handlers={HTTPException: http_error},
        lifespan=shim.lifespan,
    )
    app.state.shim = shim  # for tests and embedding; the shim keeps no job state
    return app
