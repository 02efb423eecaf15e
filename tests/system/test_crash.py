"""DESIGN section 6.3: server processes SIGKILLed in the middle of a stream of events.

Four senders spread events over two replicas while replicas are killed (no grace) and replaced, three
times. Every sender retries each event with the same idempotency key until it is acknowledged, so in
the end every event must be in the history exactly once: those applied before a crash but never
acknowledged are replayed, not applied twice, and records left behind their log are rolled forward.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.invariants import check_counts, check_history
from tests.support import CLIENT, create_job, history, register_pipeline, send, stubs
from tests.system.faults import HOT, Job, Load, Replicas, check_every_job, create_jobs

pytestmark = pytest.mark.slow

SENDERS = 4
EVENTS_PER_SENDER = 60
KILLS = 3
NAMES = ("update", "run", "resource")
RETRIED = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.ABORTED,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)


@pytest.fixture
def replicas(embedded: EmbeddedDatabase, database_name: str) -> Iterator[Replicas]:
    group = Replicas(embedded.uri, database_name)
    yield group
    group.stop()


def sender(replicas: Replicas, job_uuid: str, token: str, index: int, acknowledged: dict[str, str]) -> None:
    chooser = random.Random(index)
    for n in range(EVENTS_PER_SENDER):
        key = f"sender-{index}-event-{n}"
        name = chooser.choice(NAMES)
        for _attempt in range(600):
            with stubs(replicas.address(chooser)) as api:
                try:
                    reply = send(api, job_uuid, name, token=token, key=key, data={"n": n}, timeout=5)
                except grpc.RpcError as error:
                    # The server died under us (or lost a race): the same key makes the retry safe.
                    if error.code() not in RETRIED:
                        raise
                    time.sleep(0.05)
                    continue
            acknowledged[key] = reply.event.uuid
            break


def test_sigkill_during_event_stream_loses_no_acknowledged_event(replicas: Replicas) -> None:
    with stubs(replicas.servers[0].address) as api:
        created = create_job(api, register_pipeline(api), {"test": "crash"})
        send(api, created.job.uuid, "run", token=created.token)
    acknowledged: dict[str, str] = {}
    threads = [
        threading.Thread(target=sender, args=(replicas, created.job.uuid, created.token, index, acknowledged))
        for index in range(SENDERS)
    ]
    for thread in threads:
        thread.start()
    chooser = random.Random(7)
    for round_ in range(KILLS):
        time.sleep(chooser.uniform(0.3, 1.0))
        replicas.kill_and_replace(round_ % 2)
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)

    with stubs(replicas.servers[0].address) as api:
        job = api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=created.job.uuid), metadata=CLIENT).job
        events = history(api, created.job.uuid)
        verdict = api.jobs.VerifyHistory(
            job_service_pb2.VerifyHistoryRequest(uuid=created.job.uuid), metadata=CLIENT
        )
        check_counts(api, [job])  # moved with every state change, through both replicas and the kills
    assert len(acknowledged) == SENDERS * EVENTS_PER_SENDER, "every event is acknowledged in the end"
    check_history(job, events, acknowledged.values())
    # Exactly once: create, run, then each sender's events, none of them twice.
    assert len(events) == 2 + SENDERS * EVENTS_PER_SENDER
    by_key = {event.idempotency_key: event.uuid for event in events if event.idempotency_key}
    assert by_key == acknowledged
    assert verdict.valid, verdict.reason


# -- a SIGKILL in the middle of a batch write (group commit, DESIGN §6a) ---------------------------------

BATCH_SENDERS = 8


@pytest.fixture
def failpoint_database(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    """A database of its own that takes ``configureFailPoint`` (mongod's test commands)."""
    database = EmbeddedDatabase(tmp_path_factory.mktemp("failpoints"), test_commands=True)
    database.start()
    yield database
    database.stop()


def _ahead_of_records(db: Database[dict[str, Any]], jobs: list[Job]) -> list[dict[str, Any]]:
    """The entries the history holds past its job's record: written, not yet advanced over."""
    ahead: list[dict[str, Any]] = []
    for job in jobs:
        record = db.jobs.find_one({"_id": job.uuid}, {"seq": 1})
        if record is not None:
            ahead += db.job_events.find({"job_uuid": job.uuid, "seq": {"$gt": record["seq"]}})
    return ahead


def test_sigkill_between_a_batchs_insert_and_its_compare_and_sets(
    failpoint_database: EmbeddedDatabase, database_name: str
) -> None:
    """Every compare-and-set is held at the database (a failpoint blocks `update`, then fails it), so
    the batches in flight have their entries in the log and their records behind them; the server is
    killed right then. Its callers were never answered; their retries through a fresh server replay the
    same entries (rolled forward, not written twice), and nothing acknowledged is missing."""
    uri = failpoint_database.uri
    replicas = Replicas(uri, database_name, count=1)
    mongo: MongoClient[dict[str, Any]] = MongoClient(uri, tz_aware=True)
    try:
        # The random load visits every state, and once its jobs are RESET or RETIRED nearly all its
        # events are refused, and a refusal writes too (the rejected log's count), so the random load
        # alone may leave a single entry in flight. The held entries come from a load of its own: a
        # sender per job, with events that CREATED and RUNNING both take. A job held behind its log
        # takes no new entry until it is rolled forward (an `update`, held as well), but every other
        # sender's job is not behind, so the next batch writes its entries and is held in turn.
        jobs = create_jobs(replicas.servers[0].address, 4, "mid-batch")
        held_jobs = create_jobs(replicas.servers[0].address, BATCH_SENDERS, "held")
        db = mongo[database_name]
        with (
            Load(jobs, replicas.address, senders=BATCH_SENDERS) as load,
            Load(held_jobs, replicas.address, senders=BATCH_SENDERS, events=HOT, pinned=True) as held,
        ):
            load.wait_for_acknowledged(40)
            held.wait_for_acknowledged(BATCH_SENDERS)
            mongo.admin.command(
                "configureFailPoint",
                "failCommand",
                mode="alwaysOn",
                data={
                    "failCommands": ["update"],
                    "blockConnection": True,
                    "blockTimeMS": 2000,
                    "errorCode": 50,
                },
            )
            try:
                deadline = time.monotonic() + 90  # a loaded machine stretches each held batch's turn
                while len(_ahead_of_records(db, held_jobs)) < 2:
                    assert time.monotonic() < deadline, (
                        f"no batch in flight: {len(_ahead_of_records(db, held_jobs))} entries ahead, "
                        f"{held.acknowledged_count()} acknowledged, retried {dict(held.seen.retried)}, "
                        f"failures {held.failures}"
                    )
                    time.sleep(0.05)
                time.sleep(0.2)  # the whole batch's insert is in, its compare-and-sets held
                replicas.servers[0].kill()
                ahead = _ahead_of_records(db, jobs + held_jobs)
            finally:
                mongo.admin.command("configureFailPoint", "failCommand", mode="off")
            replicas.kill_and_replace(0)
            load.wait_for_acknowledged(load.acknowledged_count() + 40)
            held.wait_for_acknowledged(held.acknowledged_count() + BATCH_SENDERS)
        assert not load.failures, load.failures
        assert not held.failures, held.failures
        assert len(ahead) >= 2, f"the killed server held {len(ahead)} entries behind their records"
        check_every_job(replicas.servers[0].address, load)
        check_every_job(replicas.servers[0].address, held)
        # The entries the killed batch wrote were kept and acknowledged to the retries (replayed).
        acknowledged = {
            uuid
            for each in (load, held)
            for keys in each.seen.acknowledged.values()
            for uuid in keys.values()
        }
        assert {entry["_id"] for entry in ahead} <= acknowledged
    finally:
        mongo.close()
        replicas.stop()
