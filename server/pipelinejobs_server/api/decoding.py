"""Requests that protobuf cannot decode get INVALID_ARGUMENT with details, not UNKNOWN.

gRPC decodes a request before any handler runs, so a message protobuf refuses (nested past its depth
limit, or not protobuf at all) would surface as a bare UNKNOWN with a traceback in the log. This
interceptor wraps our services' deserializers so that such a request reaches the handler as an
``UndecodableRequest``, which the ``rpc`` wrapper refuses like any other bad input.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

PACKAGE_PREFIX = "/pipelinejobs.v1."
if TYPE_CHECKING:  # grpc's classes are generic only in their type stubs
    Handler = grpc.RpcMethodHandler[Any, Any]


@dataclass(frozen=True)
class UndecodableRequest:
    reason: str


def _tolerant(deserializer: Callable[[bytes], Any]) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserializer(data)
        except (DecodeError, RecursionError) as error:
            return UndecodableRequest(str(error) or type(error).__name__)

    return decode


class TolerantDecoding(grpc.aio.ServerInterceptor):  # type: ignore[type-arg]
    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(handler_call_details)
        method = handler_call_details.method or ""
        deserializer = getattr(handler, "request_deserializer", None)
        if handler is None or deserializer is None or not method.startswith(PACKAGE_PREFIX):
            return handler
        # grpc's handlers are named tuples at run time; swap only the deserializer.
        swap = handler._replace  # type: ignore[attr-defined]
        replaced: Handler = swap(request_deserializer=_tolerant(deserializer))
        return replaced
