"""The gRPC server: our two services behind the interceptors, health and reflection together, on a port.

``build_grpc_server`` is given the service layer (app.py composes it) and returns the server unstarted
with the port it bound, so tests and ``serve`` can ask for port 0. Nothing here knows the database.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from pipelinejobs_client.api.v1 import (
    job_service_pb2,
    job_service_pb2_grpc,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
)
from pipelinejobs_server.service.bundle import Services
from pipelinejobs_server.settings import Settings, Tls

from . import interceptors
from .health import DatabaseHealth
from .jobs import JobServicer
from .metrics import ServerMetrics
from .pipelines import PipelineServicer

SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name,
)


@dataclass
class GrpcServer:
    server: grpc.aio.Server
    port: int
    health: DatabaseHealth


def server_credentials(tls: Tls) -> grpc.ServerCredentials | None:
    """TLS credentials for the gRPC port; client certificates verified (or required) when configured."""
    if not tls.enabled:
        return None
    key, chain = Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes()
    client_ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=tls.require_client_cert
    )


def _add_health_and_reflection(server: grpc.aio.Server, health: DatabaseHealth) -> None:
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, "grpc.health.v1.Health", reflection.SERVICE_NAME), server
    )


def build_grpc_server(
    settings: Settings,
    services: Services,
    metrics: ServerMetrics,
    ping: Callable[[], Awaitable[None]],
) -> GrpcServer:
    """The server with every service added and its port bound; ``ping`` feeds the health service."""
    limit = settings.limits.max_message_bytes
    server = grpc.aio.server(
        interceptors=interceptors.chain(services.credentials, metrics),
        # Calls past this are refused by gRPC itself (RESOURCE_EXHAUSTED) before any handler runs: the
        # bound on the tasks and memory that calls in flight hold, whatever they are, on every
        # connection. Not also grpc.max_concurrent_streams (HTTP/2's cap per connection): a client past
        # it queues its calls without a word until their deadline (seen: DEADLINE_EXCEEDED instead of
        # RESOURCE_EXHAUSTED), behind its own watches when it multiplexes them on one channel (ADR 009).
        maximum_concurrent_rpcs=settings.streams.max_concurrent_rpcs,
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
            # Several server processes may serve one port behind a balancer, never by accident.
            ("grpc.so_reuseport", 0),
            # Long WatchJob streams stay open through idle periods and dead peers are noticed:
            # ping every 30 s, allow clients to ping every 10 s, even with no call in flight.
            ("grpc.keepalive_time_ms", 30_000),
            ("grpc.keepalive_timeout_ms", 10_000),
            ("grpc.keepalive_permit_without_calls", 1),
            ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
            ("grpc.http2.max_pings_without_data", 0),
        ],
    )
    # The same limit cuts list replies short (replies.py), so that no page is one gRPC refuses to send.
    job_service_pb2_grpc.add_JobServiceServicer_to_server(JobServicer(services, metrics, limit), server)
    pipeline_service_pb2_grpc.add_PipelineServiceServicer_to_server(
        PipelineServicer(services.pipelines, limit), server
    )
    health = DatabaseHealth(ping, SERVICE_NAMES, settings.health_interval_s)
    _add_health_and_reflection(server, health)
    address = f"{settings.host}:{settings.port}"
    credentials = server_credentials(settings.tls)
    port = (
        server.add_secure_port(address, credentials)
        if credentials is not None
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"could not bind {settings.host}:{settings.port}")
    return GrpcServer(server, port, health)
