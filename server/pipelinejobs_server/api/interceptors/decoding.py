"""Requests that protobuf cannot decode get INVALID_ARGUMENT with details, not UNKNOWN.

gRPC decodes a request before any handler runs, so a message protobuf refuses (nested past its depth
limit, or not protobuf at all) would surface as a bare UNKNOWN with a traceback in the log. This
interceptor wraps our services' deserializers so that such a request reaches the call as an
``UndecodableRequest``, and refuses it there like any other bad input (errors.py maps the refusal).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.message import DecodeError

from pipelinejobs_server.domain.errors import InvalidArgument

from .around import AroundCall, Call, Handler


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


class TolerantDecoding(AroundCall):
    def replace_handler(self, handler: Handler) -> Handler:
        deserializer = getattr(handler, "request_deserializer", None)
        if deserializer is None:
            return handler
        swap: Any = handler
        replaced: Handler = swap._replace(request_deserializer=_tolerant(deserializer))
        return replaced

    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        if isinstance(call.request, UndecodableRequest):
            raise InvalidArgument(
                f"the request is not a valid {call.method} message: {call.request.reason}", field="request"
            )
        yield
