"""The shape every interceptor of ours shares: code around each call of our services' methods.

gRPC's server interceptors see a call before its handler exists (``intercept_service``); to act around
the handler's work they must wrap its behaviour. ``AroundCall`` does that once, for unary and
server-streaming methods alike: a subclass writes ``around`` as an async context manager, and the body
of its ``async with`` is the call (for a stream: the whole stream, message after message). Only methods
of the ``pipelinejobs.v1`` package are wrapped; health and reflection are left as they are.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc

PACKAGE_PREFIX = "/pipelinejobs.v1."
if TYPE_CHECKING:  # grpc's classes are generic only in their type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]
    Context = grpc.aio.ServicerContext[Any, Any]
else:
    Handler = Context = Any

Continuation = Callable[[grpc.HandlerCallDetails], Awaitable["Handler"]]


@dataclass(frozen=True)
class Call:
    method: str  # the short name, as in the proto: "SendEvent"
    request: Any
    context: Context
    streaming: bool


def method_name(details: grpc.HandlerCallDetails) -> str | None:
    """The short method name of one of our calls; None for any other service (health, reflection)."""
    full = details.method or ""
    return full.rsplit("/", 1)[-1] if full.startswith(PACKAGE_PREFIX) else None


class AroundCall(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    def __init__(self) -> None:
        # gRPC asks every interceptor for the handler on every call. The handler a method resolves to does
        # not change, so its wrapped form is made once and reused: per call, only ``around`` runs.
        self._wrapped: dict[str, tuple[Handler, Handler]] = {}

    def around(self, call: Call) -> contextlib.AbstractAsyncContextManager[None]:
        raise NotImplementedError

    def replace_handler(self, handler: Handler) -> Handler:
        """Change the handler itself before it is wrapped (decoding.py swaps its deserializer)."""
        return handler

    async def intercept_service(
        self, continuation: Continuation, details: grpc.HandlerCallDetails
    ) -> Handler:
        handler = await continuation(details)
        method = method_name(details)
        if handler is None or method is None:
            return handler
        cached = self._wrapped.get(method)
        if cached is not None and cached[0] is handler:
            return cached[1]
        wrapped = self._wrap(method, handler)
        self._wrapped[method] = (handler, wrapped)
        return wrapped

    def _wrap(self, method: str, handler: Handler) -> Handler:
        # grpc's handlers are named tuples at run time (their stubs do not say so): swap the behaviour.
        replaced: Any = self.replace_handler(handler)
        if replaced.unary_unary is not None:
            return replaced._replace(unary_unary=self._unary(method, replaced.unary_unary))  # type: ignore[no-any-return]
        if replaced.unary_stream is not None:
            return replaced._replace(unary_stream=self._stream(method, replaced.unary_stream))  # type: ignore[no-any-return]
        return handler

    def _unary(self, method: str, behaviour: Callable[[Any, Context], Awaitable[Any]]) -> Any:
        async def unary(request: Any, context: Context) -> Any:
            async with self.around(Call(method, request, context, streaming=False)):
                return await behaviour(request, context)

        return unary

    def _stream(self, method: str, behaviour: Callable[[Any, Context], AsyncIterator[Any]]) -> Any:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            async with self.around(Call(method, request, context, streaming=True)):
                async for response in behaviour(request, context):
                    yield response

        return stream
