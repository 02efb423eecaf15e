"""WatchJob: backlog then live entries, across replicas, with no gaps or repeats, and the resume status
when the server stops."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import ServerProcess, ServerThread, start_server_process, test_settings
from tests.support import CLIENT, Stubs, create_job, error_info, register_pipeline, send, stubs


def watch(
    api: Stubs, job_uuid: str, after_seq: int = 0, until: tuple[str, ...] = (), timeout: float = 60
) -> Iterator[job_pb2.HistoryEvent]:
    request = job_service_pb2.WatchJobRequest(
        uuid=job_uuid,
        after_seq=after_seq,
        until_states=[job_pb2.JobState.Value("JOB_STATE_" + state) for state in until],
    )
    for reply in api.jobs.WatchJob(request, metadata=CLIENT, timeout=timeout):
        yield reply.event


@pytest.fixture
def replica(embedded: EmbeddedDatabase, database_name: str) -> Iterator[ServerProcess]:
    process = start_server_process(embedded.uri, database_name)
    yield process
    process.terminate()


def test_watch_sees_backlog_then_events_sent_through_another_replica(
    api: Stubs, replica: ServerProcess
) -> None:
    created = create_job(api, register_pipeline(api), {"test": "watch"})
    uuid, token = created.job.uuid, created.token
    send(api, uuid, "run", token=token)

    def sender() -> None:
        with stubs(replica.address) as other:
            for n in range(20):
                send(other, uuid, "update", token=token, data={"n": n})
            send(other, uuid, "finish", token=token)

    thread = threading.Thread(target=sender)
    seen: list[job_pb2.HistoryEvent] = []
    for event in watch(api, uuid, until=("FINISHED",)):
        seen.append(event)
        if len(seen) == 2:
            thread.start()  # the live part starts only once the backlog (create, run) has arrived
    thread.join(timeout=60)
    assert [event.seq for event in seen] == list(range(1, 24))
    assert [dict(event.data)["n"] for event in seen[2:22]] == list(range(20))
    assert job_pb2.JobState.Name(seen[-1].to_state) == "JOB_STATE_FINISHED"


def test_reconnecting_with_the_last_seq_loses_and_repeats_nothing(api: Stubs) -> None:
    created = create_job(api, register_pipeline(api), {"test": "reconnect"})
    uuid, token = created.job.uuid, created.token
    for _ in range(5):
        send(api, uuid, "update", token=token)
    first = []
    for event in watch(api, uuid):
        first.append(event.seq)
        if event.seq == 3:
            break  # the client goes away mid-backlog
    for _ in range(3):
        send(api, uuid, "update", token=token)
    send(api, uuid, "run", token=token)
    second = [event.seq for event in watch(api, uuid, after_seq=first[-1], until=("RUNNING",))]
    assert first + second == list(range(1, 11))


def test_watch_of_a_settled_job_seen_to_the_end_returns_at_once(api: Stubs) -> None:
    created = create_job(api, register_pipeline(api), {"test": "settled"})
    send(api, created.job.uuid, "fail", token=created.token)
    assert [
        event.seq for event in watch(api, created.job.uuid, after_seq=2, until=("FAILED",), timeout=10)
    ] == []
    assert [event.seq for event in watch(api, created.job.uuid, until=("FAILED",), timeout=10)] == [1, 2]


def test_watch_refuses_unknown_jobs_and_bad_arguments(api: Stubs) -> None:
    with pytest.raises(grpc.RpcError) as caught:
        list(watch(api, "bd43b784-a931-5b44-9564-51b1e3d7e442", timeout=10))
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(caught.value).reason == "JOB_NOT_FOUND"
    created = create_job(api, register_pipeline(api), {"test": "bad-watch"})
    with pytest.raises(grpc.RpcError) as caught:
        list(watch(api, created.job.uuid, after_seq=-1, timeout=10))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_server_shutdown_ends_watches_with_the_resume_status(mongodb_uri: str, database_name: str) -> None:
    # Not OK: that would tell a client waiting for a state that the job reached it (issue 16, item 1).
    server = ServerThread(test_settings(mongodb_uri, database_name)).start()
    stopper = threading.Timer(1.0, server.stop)  # SIGTERM's path: RunningServer.stop with a grace period
    with stubs(server.address) as api:
        created = create_job(api, register_pipeline(api), {"test": "shutdown"})
        stopper.start()
        started = time.monotonic()
        seen: list[int] = []
        try:
            with pytest.raises(grpc.RpcError) as caught:
                seen.extend(event.seq for event in watch(api, created.job.uuid, until=("FINISHED",)))
        finally:
            stopper.join()
    assert seen == [1]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_info(caught.value)
    assert (info.reason, dict(info.metadata)["after_seq"]) == ("WATCH_RESUME", "1")
    assert time.monotonic() - started < 30


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_watch_falls_back_to_polling_without_change_streams(tmp_path: Path) -> None:
    # A standalone server offers no change streams; watches must still see every event, in order.
    with EmbeddedDatabase(tmp_path, standalone=True) as database:
        server = ServerThread(test_settings(database.uri, "polling")).start()
        try:
            with stubs(server.address) as api:
                created = create_job(api, register_pipeline(api), {"test": "polling"})
                uuid, token = created.job.uuid, created.token

                def sender() -> None:
                    with stubs(server.address) as other:
                        for _ in range(5):
                            send(other, uuid, "update", token=token)
                            time.sleep(0.05)
                        send(other, uuid, "run", token=token)

                thread = threading.Thread(target=sender)
                thread.start()
                seqs = [event.seq for event in watch(api, uuid, until=("RUNNING",))]
                thread.join(timeout=60)
                assert seqs == list(range(1, 8))
                assert server.running is not None
                assert server.running.notifier.streaming is False
        finally:
            server.stop()
