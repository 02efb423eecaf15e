"""Every call is counted by method and status code, and unary calls are timed (api/metrics.py).

It sits outside error mapping, so it sees the code the caller gets: OK, or the code of the abort.
A stream's length says nothing about the service's speed, so streams are counted, not timed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc

from pipelinejobs_server import logs
from pipelinejobs_server.api.metrics import ServerMetrics

from .around import AroundCall, Call

log = logging.getLogger("pipelinejobs.rpc")


class CallMetrics(AroundCall):
    def __init__(self, metrics: ServerMetrics) -> None:
        self._metrics = metrics

    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        except grpc.aio.AbortError:
            code = call.context.code()
            aborted = code if isinstance(code, grpc.StatusCode) else grpc.StatusCode.UNKNOWN
            self._metrics.observe_call(call.method, aborted, _seconds(call, started))
            raise
        seconds = _seconds(call, started)
        self._metrics.observe_call(call.method, grpc.StatusCode.OK, seconds)
        log.debug(
            "rpc=%s request_id=%s code=OK ms=%.1f",
            call.method, logs.REQUEST_ID.get(), (time.perf_counter() - started) * 1000,
        )  # fmt: skip


def _seconds(call: Call, started: float) -> float | None:
    return None if call.streaming else time.perf_counter() - started
