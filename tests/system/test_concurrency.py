"""DESIGN section 6.1 under real contention: many senders, one job, two server processes, one database.

Senders pick events at random (admins cycle the job through reset/ready so that every state is visited),
so whether an event is legal depends on which writer won the previous seq. A store that did a plain
read-modify-write would show duplicate seqs, lost acknowledged events or illegal transitions here.
"""

from __future__ import annotations

import random
import threading
import uuid
from collections.abc import Iterator

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.invariants import check_counts, check_history
from tests.servers import ServerProcess, start_server_process
from tests.support import ADMIN, CLIENT, create_job, history, register_pipeline, send, stubs

pytestmark = pytest.mark.slow

SENDERS_PER_SERVER = 8
EVENTS_PER_SENDER = 25
EVENTS = ("run", "update", "resource", "finish", "index", "indexed", "update", "run", "reset", "ready")
RETRIED = (grpc.StatusCode.ABORTED, grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@pytest.fixture
def replicas(embedded: EmbeddedDatabase, database_name: str) -> Iterator[list[ServerProcess]]:
    servers = [start_server_process(embedded.uri, database_name) for _ in range(2)]
    yield servers
    for server in servers:
        server.terminate()


def sender(
    address: str, job_uuid: str, token: str, seed: int, acknowledged: list[str], refused: list[str]
) -> None:
    chooser = random.Random(seed)
    with stubs(address) as api:
        for _ in range(EVENTS_PER_SENDER):
            name = chooser.choice(EVENTS)
            admin = name in ("reset", "ready")
            key = uuid.uuid4().hex
            for _attempt in range(20):  # a retry with the same key is safe: it replays, never re-applies
                try:
                    reply = send(
                        api,
                        job_uuid,
                        name,
                        token="" if admin else token,
                        key=key,
                        metadata=ADMIN if admin else (),
                    )
                except grpc.RpcError as error:
                    if error.code() in RETRIED:
                        continue
                    if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                        raise
                    refused.append(name)
                    break
                acknowledged.append(reply.event.uuid)
                break


def test_concurrent_events_across_two_replicas_keep_history_consistent(replicas: list[ServerProcess]) -> None:
    with stubs(replicas[0].address) as api:
        created = create_job(api, register_pipeline(api), {"test": "concurrency"})
        send(api, created.job.uuid, "run", token=created.token)
    acknowledged: list[str] = []
    refused: list[str] = []
    threads = [
        threading.Thread(
            target=sender,
            args=(server.address, created.job.uuid, created.token, index * 100 + n, acknowledged, refused),
        )
        for index, server in enumerate(replicas)
        for n in range(SENDERS_PER_SERVER)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert not any(thread.is_alive() for thread in threads)

    with stubs(replicas[1].address) as api:
        job = api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=created.job.uuid), metadata=CLIENT).job
        events = history(api, created.job.uuid)
        verdict = api.jobs.VerifyHistory(
            job_service_pb2.VerifyHistoryRequest(uuid=created.job.uuid), metadata=CLIENT
        )
        check_counts(api, [job])  # moved with every state change, through both replicas and the kills
    total = 2 * SENDERS_PER_SERVER * EVENTS_PER_SENDER
    assert len(acknowledged) + len(refused) == total
    assert len(acknowledged) >= 40, "too few events applied for the check to mean anything"
    check_history(job, events, acknowledged)
    assert len(events) == 2 + len(acknowledged)  # create, run, then exactly the acknowledged ones
    assert verdict.valid, verdict.reason
