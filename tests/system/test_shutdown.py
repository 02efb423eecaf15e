"""SIGTERM: the server stops taking calls, finishes the ones in flight, ends watches with the resume
status (WATCH_RESUME), and no acknowledged event is lost. A client resumes on another replica from the
last seq it saw."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator

import pytest

from pipelinejobs_client import JobsClient, PipelineJobsError
from pipelinejobs_client.retry import RetryPolicy
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.invariants import check_history
from tests.servers import ServerProcess, start_server_process
from tests.support import CLIENT_KEY, eventually

pytestmark = pytest.mark.slow


@pytest.fixture
def replicas(embedded: EmbeddedDatabase, database_name: str) -> Iterator[list[ServerProcess]]:
    servers = [start_server_process(embedded.uri, database_name) for _ in range(2)]
    yield servers
    for server in servers:
        server.terminate()


def test_sigterm_during_a_watch_and_a_stream_of_events_loses_nothing(replicas: list[ServerProcess]) -> None:
    doomed, survivor = replicas
    with JobsClient(doomed.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("shutdown", ["shutdown@1"]).pipeline.uuid
        created = client.create_job(pipeline, lab="UW_BIOFAB", data={"test": "sigterm"})
    uuid, token = created.job.uuid, created.token

    acknowledged: list[str] = []
    watched: list[int] = []
    watch_ended = threading.Event()
    stop_sending = threading.Event()

    def send_stream() -> None:
        # Each event has its own key; after a failure it is retried (on the survivor) with the same key.
        with (
            JobsClient(doomed.address, api_key=CLIENT_KEY, retry=RetryPolicy(attempts=1)) as first,
            JobsClient(survivor.address, api_key=CLIENT_KEY) as second,
        ):
            n = 0
            while not stop_sending.is_set():
                key = f"event-{n}"
                for client in (first, second, second):
                    try:
                        reply = client.send_event(
                            uuid, "update", token=token, data={"n": n}, idempotency_key=key
                        )
                    except PipelineJobsError:
                        continue
                    acknowledged.append(reply.event.uuid)
                    break
                n += 1

    def watch() -> None:
        with JobsClient(doomed.address, api_key=CLIENT_KEY) as client:
            try:
                for event in client.watch_job(uuid, timeout=60):
                    watched.append(event.seq)
            except PipelineJobsError:
                pass  # a call cut off by the shutdown: the client reconnects with its last seq
        watch_ended.set()

    sender, watcher = threading.Thread(target=send_stream), threading.Thread(target=watch)
    watcher.start()
    sender.start()
    # SIGTERM while the watch follows live events (its backlog was create alone) and events are acknowledged.
    eventually(lambda: len(watched) >= 3 and len(acknowledged) >= 5, what="the watch and the stream to run")
    doomed.process.send_signal(signal.SIGTERM)
    assert doomed.process.wait(timeout=30) == 0, doomed.output()
    assert watch_ended.wait(timeout=30), "the watch ended with the server"
    # The stream goes on through the survivor for a while before it stops.
    at_shutdown = len(acknowledged)
    eventually(lambda: len(acknowledged) >= at_shutdown + 10, what="events acknowledged by the survivor")
    stop_sending.set()
    sender.join(timeout=60)
    watcher.join(timeout=10)

    with JobsClient(survivor.address, api_key=CLIENT_KEY) as client:
        job = client.get_job(uuid)
        history = list(client.iter_job_events(uuid))
        verdict = client.verify_history(uuid)
        # Resume the watch on the survivor after the last seq seen: exactly the rest follows.
        resumed: list[int] = []
        for event in client.watch_job(uuid, after_seq=watched[-1], timeout=30):
            resumed.append(event.seq)
            if event.seq == job.seq:
                break
    assert watched == list(range(1, len(watched) + 1)), "the watch saw a gap-free prefix of the history"
    assert watched + resumed == list(range(1, job.seq + 1))
    assert len(acknowledged) > 10
    check_history(job, history, acknowledged)
    assert verdict.valid, verdict.reason
