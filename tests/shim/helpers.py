"""Shared pieces of the shim tests: a real uvicorn shim on a free port, in front of a real gRPC server
on the real embedded database, and a few helpers. No tests here.

The fixtures are module-scoped (one server and one shim per test module: each test makes jobs of its
own, so they never see each other's), named with ``name=`` so that test modules import the functions
without shadowing the names they request.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import replace
from typing import Any

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_client.messages import event_name, state_name
from pipelinejobs_server.shim import ShimSettings, create_app
from pipelinejobs_server.shim.runner import RunningShim, bind, start_shim
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.support import CLIENT_KEY, ServerThread, test_settings


class ShimThread:
    """The shim served by uvicorn on 127.0.0.1:<free port>, on its own event loop in a daemon thread."""

    def __init__(self, settings: ShimSettings, sock: socket.socket | None = None) -> None:
        self.settings = settings
        self._sock = sock
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.running: RunningShim | None = None

    def start(self) -> ShimThread:
        self._thread.start()
        app = create_app(self.settings)
        future: Future[RunningShim] = asyncio.run_coroutine_threadsafe(
            start_shim(app, self._sock or bind("127.0.0.1", 0)), self._loop
        )
        self.running = future.result(timeout=30)
        return self

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url

    def stop(self) -> None:
        if self.running is not None:
            asyncio.run_coroutine_threadsafe(self.running.stop(1.0), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


def start_grpc_server(embedded: EmbeddedDatabase, **changes: Any) -> ServerThread:
    return ServerThread(test_settings(embedded.uri, f"test_shim_{uuid.uuid4().hex[:12]}", **changes)).start()


@pytest.fixture(scope="module", name="shim_server")
def shim_server_fixture(embedded: EmbeddedDatabase) -> Iterator[ServerThread]:
    server = start_grpc_server(embedded)
    yield server
    server.stop()


@pytest.fixture(scope="module", name="shim")
def shim_fixture(shim_server: ServerThread) -> Iterator[ShimThread]:
    shim = ShimThread(ShimSettings(server=shim_server.address)).start()
    yield shim
    shim.stop()


def http_client(base_url: str = "") -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30)


@pytest.fixture(scope="module", name="http")
def http_fixture(shim: ShimThread) -> Iterator[httpx.Client]:
    with http_client(shim.url) as client:
        yield client


@pytest.fixture(scope="module", name="jobs")
def jobs_fixture(shim_server: ServerThread) -> Iterator[JobsClient]:
    with JobsClient(shim_server.address, api_key=CLIENT_KEY) as client:
        yield client


@pytest.fixture(scope="module", name="pipeline")
def pipeline_fixture(jobs: JobsClient) -> str:
    return jobs.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid


def new_job(jobs: JobsClient, pipeline: str, **data: Any) -> job_service_pb2.CreateJobResponse:
    """A job of its own for one test (its data makes its uuid unique)."""
    return jobs.create_job(
        pipeline,
        lab="UW_BIOFAB",
        experiment="Yeast-Gates",
        sample="sample.uw_biofab.133737/A2",
        data={"test": uuid.uuid4().hex, **data},
    )


def running_job(jobs: JobsClient, pipeline: str) -> job_service_pb2.CreateJobResponse:
    """A job the reactor already sent ``run``, as in the seed."""
    created = new_job(jobs, pipeline)
    jobs.send_event(created.job.uuid, "run", token=created.token)
    return created


def history(jobs: JobsClient, job_uuid: str) -> list[job_pb2.HistoryEvent]:
    return list(jobs.iter_job_events(job_uuid))


def event_names(jobs: JobsClient, job_uuid: str) -> list[str]:
    return [event_name(entry.name) for entry in history(jobs, job_uuid)]


def state(jobs: JobsClient, job_uuid: str) -> str:
    return state_name(jobs.get_job(job_uuid).state)


def rejected(jobs: JobsClient, job_uuid: str) -> list[job_pb2.RejectedEvent]:
    return list(jobs.list_rejected_events(job_uuid, page_size=1000).events)


def agave_params(created: job_service_pb2.CreateJobResponse, status: str, **extra: str) -> dict[str, str]:
    return {"uuid": created.job.uuid, "token": created.token, "status": status, **extra}


def with_settings(shim: ShimThread, **changes: Any) -> ShimThread:
    """Another shim in front of the same server, with other settings (e.g. a nonce)."""
    return ShimThread(replace(shim.settings, **changes)).start()
