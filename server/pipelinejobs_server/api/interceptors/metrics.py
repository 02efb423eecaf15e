"""Every call is counted by method and status code, and unary calls are timed (api/metrics.py).

It sits just inside error mapping, so it sees the domain error a call ends with and counts the code the
shared table gives it (codes.py): the code the caller gets. A stream's length says nothing about the
service's speed, so streams are counted, not timed.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc

from pipelinejobs_server import logs
from pipelinejobs_server.api.metrics import ServerMetrics
from pipelinejobs_server.codes import codes_for
from pipelinejobs_server.domain.errors import PipelineJobsError

from .around import AroundCall, Call

log = logging.getLogger("pipelinejobs.rpc")


class CallMetrics(AroundCall):
    def __init__(self, metrics: ServerMetrics) -> None:
        super().__init__()
        self._metrics = metrics

    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        except PipelineJobsError as error:
            self._observe(call, codes_for(error).grpc, started)
            raise
        except Exception:
            self._observe(call, grpc.StatusCode.INTERNAL, started)  # what error mapping answers
            raise
        self._observe(call, grpc.StatusCode.OK, started)
        log.debug(
            "rpc=%s request_id=%s code=OK ms=%.1f",
            call.method, logs.REQUEST_ID.get(), (time.perf_counter() - started) * 1000,
        )  # fmt: skip

    def _observe(self, call: Call, code: grpc.StatusCode, started: float) -> None:
        seconds = None if call.streaming else time.perf_counter() - started
        self._metrics.observe_call(call.method, code, seconds)
