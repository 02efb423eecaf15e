"""F5: WatchJob streams were unbounded. Each test replays the finding against a real server on the real
embedded database: caps per API key and per process, a maximum duration after which the server ends a
stream with the resume status (and the client resumes without loss or repeat), that status, never OK,
when the server stops, and idle watchers that cost no database query while the change stream is live.

The servers take their caps from the environment, as an operator sets them (Settings.from_environ).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from pymongo import MongoClient

from pipelinejobs_client import JobsClient, RetryPolicy, ServiceUnavailable
from pipelinejobs_client.api.v1 import job_service_pb2
from pipelinejobs_server.settings import Settings
from tests.servers import ServerThread, test_settings
from tests.support import (
    ADMIN_KEY,
    CLIENT_KEY,
    Stubs,
    auth,
    create_job,
    error_info,
    eventually,
    register_pipeline,
    send,
    stubs,
)

OTHER_KEY = "test-other-client-key-0123456789"


@contextmanager
def server_with(uri: str, database: str, **environ: str) -> Iterator[ServerThread]:
    """A test server (test_settings) with the operator's settings from ``environ`` on top."""
    base = test_settings(uri, database, client_keys=(CLIENT_KEY, OTHER_KEY))
    settings = replace(
        Settings.from_environ(environ),
        **{name: getattr(base, name) for name in ("mongodb_uri", "database", "host", "port")},
        admin_keys=base.admin_keys,
        client_keys=base.client_keys,
        health_interval_s=base.health_interval_s,
    )
    thread = ServerThread(settings).start()
    try:
        yield thread
    finally:
        thread.stop()


def open_watch(api: Stubs, job: str, key: str, timeout: float = 10) -> Any:
    """A WatchJob stream (a call and an iterator at run time), once its first entry has arrived: the
    backlog, the job's create entry."""
    request = job_service_pb2.WatchJobRequest(uuid=job)
    call: Any = api.jobs.WatchJob(request, metadata=auth(key), timeout=timeout)
    assert next(call).event.seq == 1
    return call


def refused(api: Stubs, job: str, key: str) -> grpc.RpcError:
    # A short deadline: without a cap the watch is accepted, the backlog arrives, and the call stays open.
    with pytest.raises(grpc.RpcError) as caught:
        open_watch(api, job, key, timeout=3)
    return caught.value


def accepted_again(api: Stubs, job: str, key: str) -> Any:
    """A watch opened once the server has counted a cancelled one out (its handler ends soon after)."""
    deadline = time.monotonic() + 10
    while True:
        try:
            return open_watch(api, job, key)
        except grpc.RpcError as error:
            code = error.code()
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, code
        assert time.monotonic() < deadline, "the slot of the cancelled watch never came back"
        time.sleep(0.05)


def test_a_key_past_its_watch_cap_is_refused_and_accepted_again_once_one_ends(
    mongodb_uri: str, database_name: str
) -> None:
    """F5: no cap on WatchJob streams per key."""
    environ = {"PIPELINEJOBS_MAX_WATCHES_PER_KEY": "3", "PIPELINEJOBS_MAX_WATCHES": "20"}
    with server_with(mongodb_uri, database_name, **environ) as server, stubs(server.address) as api:
        job = create_job(api, register_pipeline(api)).job.uuid
        held = [open_watch(api, job, CLIENT_KEY) for _ in range(3)]
        error = refused(api, job, CLIENT_KEY)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        info = error_info(error)
        assert (info.reason, dict(info.metadata)) == ("TOO_MANY_WATCHES_FOR_KEY", {"limit": "3"})
        # Other keys keep their own caps.
        others = [open_watch(api, job, key) for key in (OTHER_KEY, OTHER_KEY, ADMIN_KEY)]
        held[0].cancel()
        held[0] = accepted_again(api, job, CLIENT_KEY)
        for call in held + others:
            call.cancel()


def test_a_server_past_its_watch_cap_refuses_every_key_and_accepts_again_once_one_ends(
    mongodb_uri: str, database_name: str
) -> None:
    """F5: no cap on WatchJob streams per process."""
    environ = {"PIPELINEJOBS_MAX_WATCHES_PER_KEY": "10", "PIPELINEJOBS_MAX_WATCHES": "4"}
    with server_with(mongodb_uri, database_name, **environ) as server, stubs(server.address) as api:
        job = create_job(api, register_pipeline(api)).job.uuid
        held = [open_watch(api, job, key) for key in (CLIENT_KEY, CLIENT_KEY, OTHER_KEY, ADMIN_KEY)]
        for key in (CLIENT_KEY, OTHER_KEY, ADMIN_KEY):
            error = refused(api, job, key)
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            info = error_info(error)
            assert (info.reason, dict(info.metadata)) == ("TOO_MANY_WATCHES_ON_SERVER", {"limit": "4"})
        # Unary calls are not watches: they still go through.
        api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=job), metadata=auth(CLIENT_KEY), timeout=5)
        held[2].cancel()
        held[2] = accepted_again(api, job, CLIENT_KEY)
        for call in held:
            call.cancel()


def test_a_watch_past_its_maximum_duration_ends_with_the_resume_status(
    mongodb_uri: str, database_name: str
) -> None:
    """F5: no maximum stream duration."""
    with (
        server_with(mongodb_uri, database_name, PIPELINEJOBS_MAX_WATCH_SECONDS="1") as server,
        stubs(server.address) as api,
    ):
        created = create_job(api, register_pipeline(api))
        send(api, created.job.uuid, "run", token=created.token)
        started = time.monotonic()
        call = open_watch(api, created.job.uuid, CLIENT_KEY, timeout=5)
        assert next(call).event.seq == 2
        with pytest.raises(grpc.RpcError) as caught:
            next(call)
        took = time.monotonic() - started
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value
    info = error_info(caught.value)
    assert (info.reason, info.metadata["after_seq"]) == ("WATCH_RESUME", "2")
    assert 0.9 < took < 4


def test_the_client_resumes_ended_watches_without_loss_or_repeat(
    mongodb_uri: str, database_name: str
) -> None:
    """F5: a watch the server ends at its maximum duration is resumed by the client from its last seq."""
    with (
        server_with(mongodb_uri, database_name, PIPELINEJOBS_MAX_WATCH_SECONDS="1") as server,
        stubs(server.address) as api,
        JobsClient(server.address, api_key=CLIENT_KEY) as client,
    ):
        created = create_job(api, register_pipeline(api))
        uuid, token = created.job.uuid, created.token

        def sender() -> None:
            send(api, uuid, "run", token=token)
            for n in range(12):  # over ~3.6 s: through three ends of the watch at least
                time.sleep(0.3)
                send(api, uuid, "update", token=token, data={"n": n})
            send(api, uuid, "finish", token=token)

        thread = threading.Thread(target=sender)
        thread.start()
        try:
            seen = [event.seq for event in client.watch_job(uuid, until_states=["FINISHED"], timeout=30)]
        finally:
            thread.join(timeout=30)
        assert server.running is not None
        ended = server.running.metrics.registry.get_sample_value(
            "pipelinejobs_grpc_calls_total", {"method": "WatchJob", "code": "UNAVAILABLE"}
        )
    assert seen == list(range(1, 16))
    assert ended is not None, "the server never ended the watch at its maximum duration"
    assert ended >= 2, "the server ended the watch at its maximum duration"


def test_a_stopping_server_ends_watches_with_the_resume_status_not_a_clean_end(
    mongodb_uri: str, database_name: str
) -> None:
    """F5 (and issue 16, item 1): watches ended with OK when the server stopped, which a client waiting
    for a state took for "the job got there"."""
    server = ServerThread(test_settings(mongodb_uri, database_name)).start()
    quick = RetryPolicy(attempts=2, initial_backoff_s=0.05, max_backoff_s=0.1)
    seen: list[int] = []
    with stubs(server.address) as api, JobsClient(server.address, api_key=CLIENT_KEY, retry=quick) as client:
        job = create_job(api, register_pipeline(api)).job.uuid
        stopper = threading.Timer(1.0, server.stop)
        stopper.start()
        try:
            with pytest.raises(ServiceUnavailable):
                seen.extend(
                    event.seq for event in client.watch_job(job, until_states=["FINISHED"], timeout=30)
                )
        finally:
            stopper.join()
    assert seen == [1]


def test_idle_watchers_make_no_database_queries_while_the_change_stream_is_live(
    mongodb_uri: str, database_name: str, mongo: MongoClient[dict[str, Any]]
) -> None:
    """F5: every idle watcher polled the database once a second (200: 39 % of a core in the server, 35 %
    in the database). Counted by the database itself: its serverStatus query counter, against the
    server's own queries without watchers (the event feed's relay looks for new entries every poll)."""

    def queries() -> int:
        return int(mongo.admin.command("serverStatus")["opcounters"]["query"])

    with server_with(mongodb_uri, database_name) as server, stubs(server.address) as api:
        assert server.running is not None
        created = create_job(api, register_pipeline(api))
        time.sleep(0.5)
        before = queries()
        time.sleep(3)
        baseline = queries() - before
        calls = [open_watch(api, created.job.uuid, CLIENT_KEY, timeout=60) for _ in range(50)]
        notifier = server.running.notifier
        deadline = time.monotonic() + 10
        while not notifier.streaming:
            assert time.monotonic() < deadline, "the change stream never opened"
            time.sleep(0.05)
        time.sleep(0.5)  # the reads that the stream's opening woke are done
        before = queries()
        time.sleep(3)
        idle = queries() - before
        # And the watchers are alive: a new entry reaches each of them.
        send(api, created.job.uuid, "run", token=created.token)
        assert {next(call).event.seq for call in calls} == {2}
        for call in calls:
            call.cancel()
    # One poll a second by each watcher would be 150 more; the server's own vary by a few.
    assert idle <= baseline + 10, f"{idle} queries with 50 idle watchers in 3 s, {baseline} without"


def test_the_grpc_server_caps_calls_in_flight(mongodb_uri: str, database_name: str) -> None:
    """F5: no maximum_concurrent_rpcs. Past it gRPC itself refuses a call, before any handler runs."""
    environ = {
        "PIPELINEJOBS_MAX_CONCURRENT_RPCS": "6",
        "PIPELINEJOBS_MAX_WATCHES": "5",
        "PIPELINEJOBS_MAX_WATCHES_PER_KEY": "5",
    }
    get = job_service_pb2.GetJobRequest
    with server_with(mongodb_uri, database_name, **environ) as server, stubs(server.address) as api:
        job = create_job(api, register_pipeline(api)).job.uuid
        held = [open_watch(api, job, CLIENT_KEY) for _ in range(5)]
        api.jobs.GetJob(get(uuid=job), metadata=auth(CLIENT_KEY), timeout=5)  # the sixth slot: free
        # The health service's Watch is a stream too, and no watch of ours: it takes the sixth slot.
        health: Any = health_pb2_grpc.HealthStub(api.channel).Watch(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert next(health).status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.RpcError) as caught:
            api.jobs.GetJob(get(uuid=job), metadata=auth(CLIENT_KEY), timeout=5)
        assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, caught.value
        health.cancel()
        eventually(lambda: _answers(api, job), what="a call to go through once the health watch ended")
        for call in held:
            call.cancel()


def _answers(api: Stubs, job: str) -> bool:
    try:
        api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=job), metadata=auth(CLIENT_KEY), timeout=5)
    except grpc.RpcError as error:
        code = error.code()
    else:
        return True
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED, code
    return False
