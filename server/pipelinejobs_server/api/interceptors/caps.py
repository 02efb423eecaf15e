"""Requests past a cap on a repeated field are refused before the handler runs (api/caps.py has the table).

Innermost, after authentication: a caller without a key hears that first, and counting a decoded message's
fields costs nothing, so no conversion, service check or database read ever sees an oversized list.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from google.protobuf.descriptor import ServiceDescriptor

from pipelinejobs_server.api import caps

from .around import AroundCall, Call


class RequestCaps(AroundCall):
    def __init__(self, services: tuple[ServiceDescriptor, ...]) -> None:
        super().__init__()
        # Every request type is planned now: a repeated field without a cap stops the server's start.
        caps.prepare(method.input_type for service in services for method in service.methods)

    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        caps.check(call.request)
        yield
