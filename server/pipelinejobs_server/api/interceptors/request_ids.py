"""Every call gets a request id: the caller's ``x-request-id`` when it is a plain short token, else a new
one. It is set for every log line of the call (logs.REQUEST_ID) and returned in the trailing metadata, so
one id follows a callback from the shim through the server and back."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from pipelinejobs_server import logs

from .around import AroundCall, Call

HEADER = "x-request-id"


def presented(call: Call) -> str | None:
    value = next((v for k, v in call.context.invocation_metadata() or () if k == HEADER), None)
    return value if isinstance(value, str) else None


class RequestIds(AroundCall):
    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        request_id = logs.request_id(presented(call))
        logs.REQUEST_ID.set(request_id)
        call.context.set_trailing_metadata(((HEADER, request_id),))
        yield
