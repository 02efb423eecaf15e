"""What every call of our services goes through, outermost first, as gRPC interceptors.

1. ``RequestIds``: the call's request id, in every log line and in the trailing metadata;
2. ``ErrorMapping``: domain errors to rich statuses, faults to INTERNAL;
3. ``CallMetrics``: calls by method and the code the caller gets, unary latency;
4. ``TolerantDecoding``: undecodable requests refused as INVALID_ARGUMENT;
5. ``Authentication``: the API key to a ``Principal``, which handlers read with ``principal()``;
6. ``RequestCaps``: a repeated field past its cap (api/caps.py) refused, before any other work.

Handlers are left with one job: convert the request, call the service layer, convert the answer.
"""

from __future__ import annotations

import grpc

from pipelinejobs_client.api.v1 import job_service_pb2, pipeline_service_pb2
from pipelinejobs_server.api.metrics import ServerMetrics
from pipelinejobs_server.service.credentials import Credentials

from .authentication import Authentication, principal
from .caps import RequestCaps
from .decoding import TolerantDecoding, UndecodableRequest
from .errors import ErrorMapping
from .metrics import CallMetrics
from .request_ids import RequestIds

SERVICES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"],
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"],
)


def chain(credentials: Credentials, metrics: ServerMetrics) -> list[grpc.aio.ServerInterceptor]:  # type: ignore[type-arg]
    return [
        RequestIds(),
        ErrorMapping(),
        CallMetrics(metrics),
        TolerantDecoding(),
        Authentication(credentials),
        RequestCaps(SERVICES),
    ]


__all__ = ["UndecodableRequest", "chain", "principal"]
