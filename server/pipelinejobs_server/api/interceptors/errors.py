"""Domain errors become rich gRPC statuses, once, for every call (codes.py has the table).

A ``PipelineJobsError`` aborts the call with its code and a ``google.rpc.ErrorInfo`` (reason and
metadata) and is logged at INFO with its reason; anything else is a fault: INTERNAL with the request id
for the caller, the traceback for the log. Messages and metadata never hold tokens or keys, so they are
safe to log.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import grpc

from pipelinejobs_server import logs
from pipelinejobs_server.api.errors import abort
from pipelinejobs_server.codes import codes_for
from pipelinejobs_server.domain.errors import PipelineJobsError

from .around import AroundCall, Call
from .request_ids import HEADER

log = logging.getLogger("pipelinejobs.rpc")


class ErrorMapping(AroundCall):
    @contextlib.asynccontextmanager
    async def around(self, call: Call) -> AsyncIterator[None]:
        started = time.perf_counter()
        try:
            yield
        except grpc.aio.AbortError:
            raise  # already a status (an inner abort)
        except PipelineJobsError as error:
            request_id = logs.REQUEST_ID.get()
            log.info(
                "rpc=%s request_id=%s code=%s reason=%s ms=%.1f",
                call.method, request_id, codes_for(error).grpc.name, error.reason, _ms(started),
            )  # fmt: skip
            await abort(call.context, error, ((HEADER, request_id),))
        except Exception as error:
            request_id = logs.REQUEST_ID.get()
            log.error("rpc=%s request_id=%s code=INTERNAL", call.method, request_id, exc_info=error)
            await call.context.abort(
                grpc.StatusCode.INTERNAL, f"internal error (request id {request_id})", ((HEADER, request_id),)
            )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000
