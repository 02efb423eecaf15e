"""The composition root: the one place that builds the server process's parts and wires them together.

Database → stores → services → the gRPC server, plus the history notifier that wakes watches and the
optional metrics endpoint. Every other module receives what it needs (a store, a service bundle, a ping)
instead of building it, so the layers stay apart: the API layer never sees storage, and the service
layer never sees gRPC. ``start_server`` is what ``pipelinejobs serve`` and ``up`` run and what tests run
in-process on port 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc

from .api.health import DatabaseHealth
from .api.metrics import MetricsEndpoint, ServerMetrics, serve_metrics
from .api.server import build_grpc_server
from .domain.clock import SYSTEM_CLOCK, Clock
from .service.bundle import Services
from .service.credentials import Credentials
from .service.events import Events
from .service.jobs import Jobs
from .service.listing import JobListing
from .service.pipelines import Pipelines
from .service.provenance import Provenance
from .service.settling import RecordSettler
from .service.watching import JobWatcher
from .settings import Settings
from .storage.database import Database
from .storage.jobs import JobStore
from .storage.notifications import HistoryNotifier
from .storage.pipelines import PipelineStore
from .storage.rejected import RejectedStore


def build_services(
    settings: Settings, database: Database, notifier: HistoryNotifier, clock: Clock
) -> Services:
    """Stores over ``database``, and the services over them."""
    jobs, pipelines, rejected = JobStore(database), PipelineStore(database), RejectedStore(database)
    settler = RecordSettler(jobs)
    return Services(
        credentials=Credentials(settings.admin_keys, settings.client_keys),
        pipelines=Pipelines(settings.limits, pipelines, clock),
        jobs=Jobs(settings, jobs, settler, pipelines, rejected, clock),
        events=Events(settings, jobs, settler, rejected, clock),
        listing=JobListing(jobs, settings.limits),
        watcher=JobWatcher(jobs, settler, notifier),
        provenance=Provenance(jobs, settler, pipelines, settings.limits),
    )


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    database: Database
    health: DatabaseHealth
    notifier: HistoryNotifier
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


async def start_server(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> RunningServer:
    database = Database(settings.mongodb_uri, settings.database, timeout_ms=settings.db_timeout_ms)
    await database.ensure_indexes()
    notifier = HistoryNotifier(database.collections.job_events)
    services = build_services(settings, database, notifier, clock)
    metrics = ServerMetrics()
    grpc_server = build_grpc_server(settings, services, metrics, database.ping)
    await grpc_server.health.check_once()
    grpc_server.health.start()
    notifier.start()
    await grpc_server.server.start()
    metrics_http = (
        None
        if settings.metrics_port is None
        else serve_metrics(metrics, settings.host, settings.metrics_port)
    )
    return RunningServer(
        grpc_server.server,
        grpc_server.port,
        database,
        grpc_server.health,
        notifier,
        services.watcher,
        metrics,
        metrics_http,
    )
