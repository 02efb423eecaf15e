"""Who is calling: the API key in the metadata, turned into a ``Principal`` before the handler runs.

Handlers read it with ``principal()`` and hand it to the service layer, which decides what the caller may
do (service/credentials.py). No key is not an error here: some calls need none (GetStateMachine), and
events may carry a job token instead. A key the server does not know is refused for every call.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextvars import ContextVar

from pipelinejobs_server.service.credentials import Credentials, Principal

from .around import AroundCall, Call

_PRINCIPAL: ContextVar[Principal | None] = ContextVar("principal", default=None)


def principal() -> Principal | None:
    """The caller of the current call (None: no API key was presented)."""
    return _PRINCIPAL.get()


def api_key(call: Call) -> str | None:
    """The API key from 'authorization: Bearer <key>' (or 'x-api-key') metadata."""
    for key, value in call.context.invocation_metadata() or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, credential = value.partition(" ")
            if scheme.lower() == "bearer" and credential.strip():
                return credential.strip()
        if key == "x-api-key" and isinstance(value, str) and value:
            return value
    return None


class Authentication(AroundCall):
    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        # Set, never reset: each call runs in a task of its own, with its own copy of the context.
        _PRINCIPAL.set(self._credentials.authenticate(api_key(call)))
        yield
