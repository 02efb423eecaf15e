"""What the fault suites share: server replicas that can be killed and replaced, and a load of senders
that retry every event with its idempotency key until it is acknowledged, recording what they saw.

The senders use the public client (``JobsClient``) without its own retries, so that every failure is
seen here, typed, and retried with the same key: that is what makes a retry safe (DESIGN 6.2).
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from pipelinejobs_client import JobsClient
from pipelinejobs_client.errors import (
    ConcurrentModification,
    DeadlineExceeded,
    InvalidTransition,
    PipelineJobsError,
    ServiceUnavailable,
)
from pipelinejobs_client.retry import NO_RETRY
from pipelinejobs_server.doctor import Problem, diagnose
from tests import design_fsm
from tests.invariants import check_history
from tests.servers import ServerProcess, start_server_process
from tests.support import ADMIN_KEY, CLIENT_KEY, eventually, stubs

# Every event of the machine but create; reset/ready (admin) bring a job back to CREATED, so every state
# is visited again and again, and refusals are frequent (and must be clean). The events that keep a job
# RUNNING come more often, so that writers keep racing for the same seq on the hot jobs.
HOT = tuple(event for event in design_fsm.EVENTS if design_fsm.destination("RUNNING", event) == "RUNNING")
EVENTS = (*HOT * 3, *(event for event in design_fsm.EVENTS if event not in ("create", *HOT)))
ADMIN_EVENTS = design_fsm.ADMIN_EVENTS
RETRIED = (ServiceUnavailable, ConcurrentModification, DeadlineExceeded)
DELIVERY_S = 30.0
LOAD_S = 180.0  # how long a load may take to reach the count of events a test waits for


class Replicas:
    """Live ``serve`` processes on one database (two by default); a killed one is replaced by a fresh one."""

    def __init__(self, uri: str, database: str, env: dict[str, str] | None = None, count: int = 2) -> None:
        self._uri, self._database, self._env = uri, database, env or {}
        self._lock = threading.Lock()
        self.servers = [start_server_process(uri, database, self._env) for _ in range(count)]
        self.started = list(self.servers)

    def address(self, chooser: random.Random) -> str:
        with self._lock:
            return chooser.choice(self.servers).address

    def kill_and_replace(self, index: int) -> None:
        with self._lock:
            victim = self.servers[index]
        victim.kill()
        replacement = start_server_process(self._uri, self._database, self._env)
        with self._lock:
            self.servers[index] = replacement
            self.started.append(replacement)

    def stop(self) -> None:
        for server in self.started:
            server.terminate()


def health(server: ServerProcess) -> int:
    with stubs(server.address) as api:
        reply = health_pb2_grpc.HealthStub(api.channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


def wait_for_health(servers: list[ServerProcess], status: int) -> None:
    name = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
    for server in servers:
        eventually(lambda server=server: health(server) == status, what=name)  # type: ignore[misc]


@dataclass
class Job:
    uuid: str
    token: str


@dataclass
class Seen:
    """What the senders saw, over all attempts. Lists and Counters are filled from several threads."""

    acknowledged: dict[str, dict[str, str]] = field(default_factory=dict)  # job -> key -> event uuid
    refused: int = 0
    replayed: int = 0  # acknowledged only on a retry: the first attempt was applied, its answer lost
    retried: Counter[str] = field(default_factory=Counter)  # "ServiceUnavailable/DATABASE_UNAVAILABLE"…
    slowest_unavailable_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)


class RecordWatcher:
    """Follows every update of the job records through a change stream while a load runs: a record's seq
    must never go down. The compare-and-set on seq is what guarantees it; ListJobs reads records as they
    are stored, so a record moved back would list a job in a state it has already left. A change stream
    sees each write, however briefly its value lasted: polling would miss most of them."""

    def __init__(self, uri: str, database: str, jobs: list[Job]) -> None:
        self._client: MongoClient[dict[str, Any]] = MongoClient(
            uri, serverSelectionTimeoutMS=500, connectTimeoutMS=500
        )
        self._records = self._client[database]["jobs"]
        self._uuids = {job.uuid for job in jobs}
        self._stop = threading.Event()
        self._open = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self.backwards: list[str] = []
        self.updates = 0

    def __enter__(self) -> RecordWatcher:
        self._thread.start()
        assert self._open.wait(timeout=30), "the change stream did not open"
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._client.close()

    def _watch(self) -> None:
        highest: dict[str, int] = {}
        resume: Any = None
        while not self._stop.is_set():
            try:
                updates = [{"$match": {"operationType": "update"}}]
                with self._records.watch(updates, resume_after=resume, max_await_time_ms=100) as stream:
                    self._open.set()
                    while not self._stop.is_set():
                        change = stream.try_next()
                        if change is None:
                            continue
                        resume = stream.resume_token
                        self._note(highest, change["documentKey"]["_id"], change["updateDescription"])
            except OperationFailure:
                resume = None  # the history to resume from is gone (a restarted database): start afresh
            except PyMongoError:  # the database is down (on purpose): follow again when it is back
                time.sleep(0.1)

    def _note(self, highest: dict[str, int], job: str, description: dict[str, Any]) -> None:
        seq = description.get("updatedFields", {}).get("seq")
        if job not in self._uuids or seq is None:
            return
        self.updates += 1
        if seq < highest.get(job, 0):
            self.backwards.append(f"{job}: seq {highest[job]} -> {seq}")
        highest[job] = max(seq, highest.get(job, 0))


class Load:
    """Sender threads that pick a job and an event at random until stopped; each event is retried with its
    key until the service acknowledges or refuses it. ``address`` picks the replica for each attempt."""

    def __init__(
        self,
        jobs: list[Job],
        address: Callable[[random.Random], str],
        senders: int = 6,
        hot: int = 0,
        *,
        events: Sequence[str] = EVENTS,
        pinned: bool = False,
    ) -> None:
        self.jobs = jobs
        # The first ``hot`` jobs get eight times the events of the others: many writers racing on one job
        # is where a missing compare-and-set shows (records moved back, seqs lost).
        self._choices = jobs[:hot] * 8 + jobs[hot:]
        self._events = events
        # Pinned: sender n sends to job n alone (modulo the jobs), so no two senders share a job.
        self._pinned = pinned
        self.seen = Seen(acknowledged={job.uuid: {} for job in jobs})
        self._address = address
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._send, args=(n,), daemon=True) for n in range(senders)]
        self.failures: list[BaseException] = []

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)
        assert not any(thread.is_alive() for thread in self._threads), "a sender is stuck"

    def acknowledged_count(self) -> int:
        with self.seen.lock:
            return sum(len(keys) for keys in self.seen.acknowledged.values())

    def wait_for_acknowledged(self, count: int) -> None:
        # How long it takes is the machine's (refusals and races cost too); what matters is that the load
        # ran. A bound of 30 s was missed on a slow day (105 of 150 acknowledged, 333 refused).
        try:
            eventually(
                lambda: self.acknowledged_count() >= count, LOAD_S, what=f"{count} acknowledged events"
            )
        except AssertionError as error:
            with self.seen.lock:
                seen = f"refused {self.seen.refused}, retried {dict(self.seen.retried)}"
            raise AssertionError(f"{error}: {self.acknowledged_count()} acknowledged, {seen}") from None

    def _send(self, n: int) -> None:
        chooser = random.Random(n)
        clients: dict[tuple[str, bool], JobsClient] = {}
        try:
            count = 0
            while not self._stop.is_set():
                job = self.jobs[n % len(self.jobs)] if self._pinned else chooser.choice(self._choices)
                name = chooser.choice(self._events)
                self._deliver(chooser, clients, job, name, f"sender-{n}-{count}")
                count += 1
        except BaseException as error:  # surfaced by the test: a sender must never die silently
            self.failures.append(error)
        finally:
            for client in clients.values():
                client.close()

    def _deliver(
        self,
        chooser: random.Random,
        clients: dict[tuple[str, bool], JobsClient],
        job: Job,
        name: str,
        key: str,
    ) -> None:
        admin = name in ADMIN_EVENTS
        # Long enough for any outage the tests make; a job that stays stuck fails the test instead.
        give_up = time.monotonic() + DELIVERY_S
        while time.monotonic() < give_up:
            address = self._address(chooser)
            client = clients.get((address, admin))
            if client is None:
                api_key = ADMIN_KEY if admin else CLIENT_KEY
                client = clients[(address, admin)] = JobsClient(
                    address, api_key=api_key, timeout=10, retry=NO_RETRY
                )
            started = time.monotonic()
            try:
                reply = client.send_event(
                    job.uuid, name, token="" if admin else job.token, data={"key": key}, idempotency_key=key
                )
            except InvalidTransition:
                with self.seen.lock:
                    self.seen.refused += 1
                return
            except PipelineJobsError as error:
                # A call cut by a SIGKILLed server may end CANCELLED rather than UNAVAILABLE.
                if not isinstance(error, RETRIED) and error.code != grpc.StatusCode.CANCELLED:
                    raise
                self._note(error, time.monotonic() - started)
                time.sleep(0.05)
                continue
            with self.seen.lock:
                self.seen.acknowledged[job.uuid][key] = reply.event.uuid
                self.seen.replayed += reply.replayed
            return
        raise AssertionError(
            f"event {key} ({name}) was not acknowledged within {DELIVERY_S} s: {self.seen.retried}"
        )

    def _note(self, error: PipelineJobsError, elapsed_s: float) -> None:
        with self.seen.lock:
            self.seen.retried[f"{type(error).__name__}/{error.reason or error.code.name}"] += 1
            if isinstance(error, ServiceUnavailable) and error.reason == "DATABASE_UNAVAILABLE":
                self.seen.slowest_unavailable_s = max(self.seen.slowest_unavailable_s, elapsed_s)


def create_jobs(address: str, count: int, tag: str) -> list[Job]:
    with JobsClient(address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline(f"faults-{tag}", ["faults@1.0"]).pipeline.uuid
        created = [client.create_job(pipeline, sample=f"{tag}-{n}", data={"n": n}) for n in range(count)]
    return [Job(reply.job.uuid, reply.token) for reply in created]


def check_every_job(address: str, load: Load) -> None:
    """DESIGN 6.1 on every job through the API: each acknowledged event exactly once, in a legal, gap-free,
    hash-chained history that its record agrees with (reading the job rolls forward any crash leftover)."""
    with JobsClient(address, api_key=CLIENT_KEY) as client:
        for job in load.jobs:
            record = client.get_job(job.uuid)
            events = list(client.iter_job_events(job.uuid, page_size=1000))
            acknowledged = load.seen.acknowledged[job.uuid]
            check_history(record, events, acknowledged.values())
            by_key = {event.idempotency_key: event.uuid for event in events if event.idempotency_key}
            assert by_key == acknowledged, (
                "an event is missing, doubled, or applied under a key never acknowledged"
            )
            assert len(events) == 1 + len(acknowledged)  # create, then exactly the acknowledged events
            verdict = client.verify_history(job.uuid)
            assert verdict.valid, verdict.reason


def doctor_problems(uri: str, database: str) -> list[Problem]:
    problems, summary = diagnose(uri, database)
    assert summary.jobs > 0
    return problems
