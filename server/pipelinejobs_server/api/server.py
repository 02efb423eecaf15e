"""Building the gRPC server: our services, health and reflection together, bound to a port.

``start_server`` returns the running server and the port it bound, so tests can ask for port 0.
``RunningServer.stop`` ends it within its grace period plus ``STOP_MARGIN_S``, whatever the database does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable
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
from pipelinejobs_server.storage.database import CLOSE_TIMEOUT_S, Database
from pipelinejobs_server.storage.jobs import JobStore
from pipelinejobs_server.storage.notifications import LogNotifier
from pipelinejobs_server.storage.pipelines import PipelineStore
from pipelinejobs_server.storage.rejected import RejectedStore

from .decoding import TolerantDecoding
from .health import DatabaseHealth
from .jobs import JobServicer
from .metrics import MetricsEndpoint, ServerMetrics, serve_metrics
from .pipelines import PipelineServicer

log = logging.getLogger("pipelinejobs.server")

# Caps for the steps of a stop. They are deadlines, not waits: on a database that answers, a whole stop
# with calls and watches in flight took at most 0.12 s (400 stops measured). A step that overruns its
# cap is logged and abandoned, never awaited for ever.
STEP_SLACK_S = 0.25  # the gRPC server's stop past its grace; the background tasks after the calls ended
CANCEL_WAIT_S = 0.25  # a background task still inside the driver, after it was cancelled
# What a stop may take past its grace: the caps of the steps after the gRPC server's stop, which all
# steps share as one deadline (so a short step leaves its time to the next).
STOP_MARGIN_S = STEP_SLACK_S + STEP_SLACK_S + CANCEL_WAIT_S + CLOSE_TIMEOUT_S + STEP_SLACK_S

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

        Returns within ``grace_s + STOP_MARGIN_S`` (plus scheduling), also when the database stopped
        answering: then its background tasks are still inside driver calls that last up to the socket
        timeout (10 s), and closing the client does not end them. They are told to stop by flags first,
        and cancelled only after the calls are done and the deadline for them passed.
        """
        grace_s = max(grace_s, 0.0)
        budget = _Budget(grace_s + STOP_MARGIN_S)
        await budget.run("health: NOT_SERVING", self.health.stop(), STEP_SLACK_S)
        self.watcher.close()
        self.notifier.stop()
        background = [task for task in (self.health.task, self.notifier.task) if task is not None]
        await budget.run("gRPC server", self.server.stop(grace_s), grace_s + STEP_SLACK_S)
        if not await budget.wait("background tasks", background, STEP_SLACK_S):
            # Stuck in a driver call to a database that does not answer. Cancelling is safe now: each
            # loop ends by its flag even if the driver loses the cancellation (api/health.py).
            await budget.cancel("background tasks", background, CANCEL_WAIT_S)
        closing = self.database.close(CLOSE_TIMEOUT_S)
        await budget.run("database client", closing, CLOSE_TIMEOUT_S + STEP_SLACK_S)
        if self.metrics_http is not None:
            # Its shutdown() blocks until the HTTP thread's next poll (0.5 s): not on the event loop.
            await budget.run("metrics endpoint", asyncio.to_thread(self.metrics_http.close), STEP_SLACK_S)
        budget.done()


class _Budget:
    """One deadline for a whole stop; each step waits until its own cap or the deadline, then moves on."""

    def __init__(self, total_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._deadline = self._started + total_s
        self.overruns: list[str] = []

    def _timeout(self, cap_s: float) -> float:
        return max(0.0, min(cap_s, self._deadline - self._loop.time()))

    async def run(self, step: str, work: Awaitable[None], cap_s: float) -> bool:
        return await self.wait(step, [asyncio.ensure_future(work)], cap_s)

    async def wait(self, step: str, tasks: Iterable[asyncio.Future[None]], cap_s: float) -> bool:
        """Wait (never cancel) until the tasks are done, for up to ``cap_s``; False if some are not."""
        tasks = list(tasks)
        pending = {task for task in tasks if not task.done()}
        if pending:
            timeout = self._timeout(cap_s)
            _, pending = await asyncio.wait(pending, timeout=timeout) if timeout > 0 else (set(), pending)
            if pending:
                self.overruns.append(step)
                log.warning(
                    "stop: %s still running after %.2f s; abandoned: %s",
                    step,
                    timeout,
                    ", ".join(_name(task) for task in pending),
                )
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("stop: %s failed: %r", step, task.exception())
        return not pending

    async def cancel(self, step: str, tasks: Iterable[asyncio.Future[None]], cap_s: float) -> bool:
        tasks = [task for task in tasks if not task.done()]
        for task in tasks:
            task.cancel()
        return await self.wait(f"{step} (cancelled)", tasks, cap_s)

    def done(self) -> None:
        took = self._loop.time() - self._started
        if self.overruns:
            log.warning("stopped in %.2f s; abandoned: %s", took, "; ".join(self.overruns))
        else:
            log.debug("stopped in %.2f s", took)


def _name(task: asyncio.Future[None]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)


async def settle_tasks(timeout_s: float) -> list[str]:
    """Cancel the loop's other tasks and wait up to ``timeout_s`` for them; the names of those left.

    For the owner of a loop, after the servers on it stopped: ``asyncio.run`` would wait for every
    leftover task without a limit, and one whose cancellation the driver lost (api/health.py) would hold
    the process for as long as its database call lasts.
    """
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.debug("task %s ended with %r", task.get_name(), task.exception())
    left = sorted(task.get_name() for task in pending)
    if left:
        log.warning("%d task(s) still running %.2f s after cancel; abandoned: %s", len(left), timeout_s, left)
    return left


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
