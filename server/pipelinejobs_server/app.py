"""The composition root: the one place that builds the server process's parts and wires them together.

Database → stores → services → the gRPC server, plus the history notifier that wakes watches and the
optional metrics endpoint. Every other module receives what it needs (a store, a service bundle, a ping)
instead of building it, so the layers stay apart: the API layer never sees storage, and the service
layer never sees gRPC. ``start_server`` is what ``pipelinejobs serve`` and ``up`` run and what tests run
in-process on port 0. ``RunningServer.stop`` ends it within its grace period plus ``STOP_MARGIN_S``,
whatever the database does (stopping.py).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import grpc

from .api.health import DatabaseHealth
from .api.metrics import MetricsEndpoint, ServerMetrics, serve_metrics
from .api.server import build_grpc_server
from .domain.clock import SYSTEM_CLOCK, Clock
from .service.bundle import Services
from .service.counting import JobCounting
from .service.credentials import Credentials
from .service.events import Events
from .service.feed import EventFeed
from .service.feed_relay import FeedRelay, WakingJobStore
from .service.feed_tail import FeedTail
from .service.jobs import Jobs
from .service.listing import JobListing
from .service.pipelines import Pipelines
from .service.provenance import Provenance
from .service.settling import RecordSettler
from .service.watch_limits import WatchLimits
from .service.watching import JobWatcher
from .settings import Settings
from .stopping import Budget
from .storage.counts import Counters
from .storage.database import CLOSE_TIMEOUT_S, Database
from .storage.extent import Extents
from .storage.feed import FeedStore
from .storage.folding import CountFolder
from .storage.jobs import JobStore
from .storage.notifications import HistoryNotifier
from .storage.pipelines import PipelineStore
from .storage.rejected import RejectedStore
from .storage.upkeep import Upkeep

# Caps for the steps of a stop. They are deadlines, not waits: on a database that answers, a whole stop
# with calls and watches in flight took at most 0.12 s (400 stops measured). A step that overruns its
# cap is logged and abandoned, never awaited for ever.
STEP_SLACK_S = 0.25  # the gRPC server's stop past its grace; the background tasks after the calls ended
CANCEL_WAIT_S = 0.25  # a background task still inside the driver, after it was cancelled
# What a stop may take past its grace: the caps of the steps after the gRPC server's stop, which all
# steps share as one deadline (so a short step leaves its time to the next).
STOP_MARGIN_S = STEP_SLACK_S + STEP_SLACK_S + CANCEL_WAIT_S + CLOSE_TIMEOUT_S + STEP_SLACK_S


@dataclass
class Feed:
    """The event feed's moving parts: the relay that fills it and the tail that wakes its watches."""

    store: FeedStore
    relay: FeedRelay
    tail: FeedTail


def build_feed(settings: Settings, database: Database, clock: Clock) -> Feed:
    store = FeedStore(database, majority_reads=settings.feed.majority_reads)
    tail = FeedTail(store, poll_s=settings.feed.poll_s)
    relay = FeedRelay(
        store,
        RecordSettler(JobStore(database)),
        clock,
        retention=settings.feed.retention,
        poll_s=settings.feed.poll_s,
        on_fed=tail.poke,
    )
    return Feed(store, relay, tail)


def build_services(
    settings: Settings, database: Database, notifier: HistoryNotifier, clock: Clock, feed: Feed | None = None
) -> Services:
    """Stores over ``database``, and the services over them."""
    feed = feed or build_feed(settings, database, clock)
    # Its writers wake the feed's relay as soon as they advance a record (service/feed_relay.py).
    jobs, pipelines = WakingJobStore(database, feed.relay), PipelineStore(database)
    rejected = RejectedStore(database, keep=settings.limits.max_rejected_per_job)
    settler = RecordSettler(jobs)
    # One set of caps for every live feed of the process: a feed added later takes its slots here too.
    watch_limits = WatchLimits(
        per_key=settings.streams.max_watches_per_key, total=settings.streams.max_watches
    )
    return Services(
        credentials=Credentials(settings.admin_keys, settings.client_keys),
        pipelines=Pipelines(settings.limits, pipelines, clock),
        jobs=Jobs(settings, jobs, settler, pipelines, rejected, clock, feed=feed.relay),
        events=Events(settings, jobs, settler, rejected, clock),
        listing=JobListing(jobs, settings.limits),
        counting=JobCounting(jobs.counters),
        watcher=JobWatcher(
            jobs, settler, notifier, watch_limits, max_duration_s=settings.streams.max_watch_s
        ),
        provenance=Provenance(jobs, settler, pipelines, settings.limits),
        feed=EventFeed(
            feed.store,
            feed.tail,
            watch_limits,
            settings.limits,
            clock,
            max_duration_s=settings.streams.max_watch_s,
            bookmark_s=settings.feed.bookmark_s,
        ),
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
    feed: Feed | None = None
    events: EventFeed | None = None
    upkeep: Upkeep | None = None
    folder: CountFolder | None = None

    async def stop(self, grace_s: float) -> None:
        """Refuse new calls, let in-flight ones finish for up to ``grace_s``, then close the database.

        Watch streams have no natural end, so they are ended first, with UNAVAILABLE / WATCH_RESUME and
        their last seq: a client resumes elsewhere after it and misses nothing (never OK, which would
        tell a client waiting for a state that the job reached it).

        Returns within ``grace_s + STOP_MARGIN_S`` (plus scheduling), also when the database stopped
        answering: then its background tasks are still inside driver calls that last up to the socket
        timeout (10 s), and closing the client does not end them. They are told to stop by flags first,
        and cancelled only after the calls are done and the deadline for them passed.
        """
        grace_s = max(grace_s, 0.0)
        budget = Budget(grace_s + STOP_MARGIN_S)
        await budget.run("health: NOT_SERVING", self.health.stop(), STEP_SLACK_S)
        self.watcher.close()
        self.notifier.stop()
        tasks = [self.health.task, self.notifier.task]
        if self.upkeep is not None:
            self.upkeep.stop()
            tasks.append(self.upkeep.task)
        if self.folder is not None:
            self.folder.stop()
            tasks.append(self.folder.task)
        if self.events is not None:
            self.events.close()
        if self.feed is not None:
            self.feed.relay.stop()
            self.feed.tail.stop()
            tasks += [self.feed.relay.task, self.feed.tail.task]
        background = [task for task in tasks if task is not None]
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


async def start_server(settings: Settings, *, clock: Clock = SYSTEM_CLOCK) -> RunningServer:
    database = Database(settings.mongodb_uri, settings.database, timeout_ms=settings.db_timeout_ms)
    missing = await database.ensure_indexes()
    await RejectedStore(database).ensure_retention(settings.rejected_retention)
    notifier = HistoryNotifier(database.collections.job_events)
    await FeedStore(database).ensure()
    feed = build_feed(settings, database, clock)
    services = build_services(settings, database, notifier, clock, feed)
    metrics = ServerMetrics()
    services.events.batches.listeners.append(metrics.observe_batch)
    grpc_server = build_grpc_server(settings, services, metrics, database.ping)
    await grpc_server.health.check_once()
    grpc_server.health.start()
    health = grpc_server.health
    c = database.collections
    counters = Counters(
        database
    )  # the upkeep's first count and the folder share what they learn of the server
    upkeep = Upkeep(
        missing,
        counters,
        Extents(c.job_listing_extent, c.job_listing),
        clock.now,
        on_change=lambda status: health.upkeep(status.done),
    )
    await health.upkeep(False)
    notifier.start()
    if settings.feed.relay:
        feed.relay.start()
    await grpc_server.server.start()
    upkeep.start()  # after the server: building and counting never hold up serving
    folder = CountFolder(counters, clock.now)
    folder.start()
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
        feed,
        services.feed,
        upkeep,
        folder,
    )
