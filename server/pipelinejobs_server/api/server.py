"""Building the gRPC server: our services, health and reflection together, bound to a port.

``start_server`` returns the running server and the port it bound, so tests can ask for port 0.
"""

from __future__ import annotations

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
from pipelinejobs_server.service.credentials import Credentials
from pipelinejobs_server.service.events import EventService
from pipelinejobs_server.service.jobs import JobService
from pipelinejobs_server.service.ledger import Ledger
from pipelinejobs_server.service.listing import JobListing
from pipelinejobs_server.service.pipelines import PipelineService
from pipelinejobs_server.service.provenance import ProvenanceService
from pipelinejobs_server.service.watching import JobWatcher
from pipelinejobs_server.settings import Settings, Tls
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.jobs import JobStore
from pipelinejobs_server.storage.notifications import LogNotifier
from pipelinejobs_server.storage.pipelines import PipelineStore
from pipelinejobs_server.storage.rejected import RejectedStore

from .decoding import TolerantDecoding
from .health import DatabaseHealth
from .jobs import JobServicer
from .metrics import MetricsEndpoint, ServerMetrics, serve_metrics
from .pipelines import PipelineServicer

SERVICE_NAMES = (
    job_service_pb2.DESCRIPTOR.services_by_name["JobService"].full_name,
    pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name,
)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    database: Database
    health: DatabaseHealth
    notifier: LogNotifier
    watcher: JobWatcher
    metrics: ServerMetrics
    metrics_http: MetricsEndpoint | None = None

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let in-flight ones finish for up to ``grace_s``, then close the database.

        Watch streams have no natural end, so they are ended first (cleanly, status OK): a client
        reconnects elsewhere with its last seq and misses nothing.
        """
        await self.health.stop()
        self.watcher.close()
        await self.server.stop(grace_s)
        await self.notifier.stop()
        await self.database.close()
        if self.metrics_http is not None:
            self.metrics_http.close()


def server_credentials(tls: Tls) -> grpc.ServerCredentials | None:
    """TLS credentials for the gRPC port; client certificates verified (or required) when configured."""
    if not tls.enabled:
        return None
    key, chain = Path(tls.key_file).read_bytes(), Path(tls.cert_file).read_bytes()
    client_ca = Path(tls.client_ca_file).read_bytes() if tls.client_ca_file else None
    return grpc.ssl_server_credentials(
        [(key, chain)], root_certificates=client_ca, require_client_auth=tls.require_client_cert
    )


async def start_server(settings: Settings) -> RunningServer:
    database = Database(settings.mongodb_uri, settings.database, timeout_ms=settings.db_timeout_ms)
    await database.ensure_indexes()
    credentials = Credentials(settings.admin_keys, settings.client_keys)
    pipelines = PipelineStore(database)
    ledger, rejected = Ledger(JobStore(database)), RejectedStore(database)
    jobs = JobService(settings, ledger, pipelines, rejected)
    events = EventService(settings, ledger, rejected)
    notifier = LogNotifier(database.collections.job_events)
    metrics = ServerMetrics()
    watcher = JobWatcher(ledger, notifier)

    limit = settings.limits.max_message_bytes
    server = grpc.aio.server(
        interceptors=[TolerantDecoding()],
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
    job_service_pb2_grpc.add_JobServiceServicer_to_server(
        JobServicer(
            credentials,
            jobs,
            events,
            JobListing(ledger.jobs, settings.limits),
            watcher,
            settings.limits,
            metrics,
            ProvenanceService(ledger, pipelines, settings.limits),
        ),
        server,
    )
    pipeline_service_pb2_grpc.add_PipelineServiceServicer_to_server(
        PipelineServicer(credentials, PipelineService(settings.limits, pipelines), settings.limits, metrics),
        server,
    )
    health = DatabaseHealth(database, SERVICE_NAMES, settings.health_interval_s)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable_server_reflection(
        (*SERVICE_NAMES, "grpc.health.v1.Health", reflection.SERVICE_NAME), server
    )
    address = f"{settings.host}:{settings.port}"
    credentials_for_port = server_credentials(settings.tls)
    port = (
        server.add_secure_port(address, credentials_for_port)
        if credentials_for_port is not None
        else server.add_insecure_port(address)
    )
    if port == 0:
        raise OSError(f"could not bind {settings.host}:{settings.port}")
    await health.check_once()
    health.start()
    notifier.start()
    await server.start()
    metrics_http = (
        None
        if settings.metrics_port is None
        else serve_metrics(metrics, settings.host, settings.metrics_port)
    )
    return RunningServer(server, port, database, health, notifier, watcher, metrics, metrics_http)
