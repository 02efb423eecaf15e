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

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.invariants import check_history
from tests.support import CLIENT, create_job, history, register_pipeline, send, stubs
from tests.system.faults import Replicas

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
    assert len(acknowledged) == SENDERS * EVENTS_PER_SENDER, "every event is acknowledged in the end"
    check_history(job, events, acknowledged.values())
    # Exactly once: create, run, then each sender's events, none of them twice.
    assert len(events) == 2 + SENDERS * EVENTS_PER_SENDER
    by_key = {event.idempotency_key: event.uuid for event in events if event.idempotency_key}
    assert by_key == acknowledged
    assert verdict.valid, verdict.reason
