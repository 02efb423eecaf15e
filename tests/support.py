"""Test helpers: a server on a background thread, server processes, stubs and error details."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from pipelinejobs_client.api.v1 import (
    job_pb2,
    job_service_pb2,
    job_service_pb2_grpc,
    pipeline_pb2,
    pipeline_service_pb2,
    pipeline_service_pb2_grpc,
)
from pipelinejobs_server.api.server import RunningServer, start_server
from pipelinejobs_server.settings import Settings

# The repository: docs, README and deployment files are read from it.
ROOT = Path(__file__).resolve().parent.parent

ADMIN_KEY = "test-admin-key-0123456789abcdef"
CLIENT_KEY = "test-client-key-0123456789abcdef"


def test_settings(uri: str, database: str, **changes: Any) -> Settings:
    settings = Settings(
        mongodb_uri=uri,
        database=database,
        host="127.0.0.1",
        port=0,
        admin_keys=(ADMIN_KEY,),
        client_keys=(CLIENT_KEY,),
        health_interval_s=0.2,
    )
    return replace(settings, **changes)


# Imported into test modules: keep pytest from collecting it as a test.
test_settings.__test__ = False  # type: ignore[attr-defined]


class ServerThread:
    """A real gRPC server on 127.0.0.1 with its own event loop, in a daemon thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.running: RunningServer | None = None

    def start(self) -> ServerThread:
        self._thread.start()
        future: Future[RunningServer] = asyncio.run_coroutine_threadsafe(
            start_server(self._settings), self._loop
        )
        self.running = future.result(timeout=60)
        return self

    @property
    def address(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"

    def stop(self) -> None:
        if self.running is not None:
            asyncio.run_coroutine_threadsafe(self.running.stop(1.0), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


_LISTENING = re.compile(r"listening on [\d.]+:(\d+)")


@dataclass
class ServerProcess:
    """``pipelinejobs serve`` in its own process, for multi-replica and crash tests."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no grace, no cleanup, as a crash."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server_process(
    uri: str, database: str, extra_env: Mapping[str, str] | None = None, timeout_s: float = 60
) -> ServerProcess:
    env = dict(os.environ)
    env.update(
        {
            "MONGODB_URI": uri,
            "PIPELINEJOBS_DATABASE": database,
            "PIPELINEJOBS_ADMIN_KEY": ADMIN_KEY,
            "PIPELINEJOBS_CLIENT_KEYS": CLIENT_KEY,
            "PIPELINEJOBS_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    # Output goes to a file, not a pipe: nobody has to keep draining it, and it is there to read on failure.
    log_path = Path(tempfile.mkdtemp(prefix="pipelinejobs-serve-")) / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelinejobs_server", "serve", "--grpc-port", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return ServerProcess(process, int(match.group(1)), log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("server process did not start listening:\n" + log_path.read_text(errors="replace"))


@dataclass
class Stubs:
    channel: grpc.Channel
    jobs: job_service_pb2_grpc.JobServiceStub
    pipelines: pipeline_service_pb2_grpc.PipelineServiceStub


@contextmanager
def stubs(address: str) -> Iterator[Stubs]:
    with grpc.insecure_channel(address) as channel:
        yield Stubs(
            channel,
            job_service_pb2_grpc.JobServiceStub(channel),
            pipeline_service_pb2_grpc.PipelineServiceStub(channel),
        )


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


CLIENT = auth(CLIENT_KEY)
ADMIN = auth(ADMIN_KEY)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    """The google.rpc.ErrorInfo a server error carries."""
    status = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no rich status on {error}"
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError(f"no ErrorInfo in {status}")


def register_pipeline(s: Stubs, name: str = "fcs-etl", version: str = "0.4.0") -> str:
    reply = s.pipelines.RegisterPipeline(
        pipeline_service_pb2.RegisterPipelineRequest(
            name=name, components=[pipeline_pb2.PipelineComponent(id=name, version=version)]
        ),
        metadata=CLIENT,
    )
    return reply.pipeline.uuid


def create_job(
    s: Stubs, pipeline: str, data: dict[str, Any] | None = None, **links: list[str]
) -> job_service_pb2.CreateJobResponse:
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline,
        links=job_pb2.JobLinks(
            lab=links.get("lab", ["UW_BIOFAB"]),
            experiment=links.get("experiment", ["Yeast-Gates"]),
            sample=links.get("sample", ["sample.uw_biofab.133737/A2"]),
        ),
    )
    if data:
        request.data.update(data)
    reply: job_service_pb2.CreateJobResponse = s.jobs.CreateJob(request, metadata=CLIENT)
    return reply


def event_enum(name: str) -> job_pb2.JobEvent.ValueType:
    return job_pb2.JobEvent.Value("JOB_EVENT_" + name.upper())


def state_name(value: int) -> str:
    return job_pb2.JobState.Name(job_pb2.JobState.ValueType(value)).removeprefix("JOB_STATE_")


def send(
    s: Stubs,
    job_uuid: str,
    event: str,
    *,
    token: str = "",
    data: dict[str, Any] | None = None,
    key: str = "",
    metadata: tuple[tuple[str, str], ...] = (),
    timeout: float = 30,
) -> job_service_pb2.SendEventResponse:
    request = job_service_pb2.SendEventRequest(
        uuid=job_uuid, event=event_enum(event), token=token, idempotency_key=key
    )
    if data:
        request.data.update(data)
    reply: job_service_pb2.SendEventResponse = s.jobs.SendEvent(request, metadata=metadata, timeout=timeout)
    return reply


def history(s: Stubs, job_uuid: str) -> list[job_pb2.HistoryEvent]:
    events: list[job_pb2.HistoryEvent] = []
    token = ""
    while True:
        reply = s.jobs.ListJobEvents(
            job_service_pb2.ListJobEventsRequest(uuid=job_uuid, page_size=1000, page_token=token),
            metadata=CLIENT,
        )
        events.extend(reply.events)
        token = reply.next_page_token
        if not token:
            return events


def wait_for_line(
    log: Path, pattern: str, process: subprocess.Popen[bytes], timeout_s: float = 90
) -> re.Match[str]:
    """Wait until a process's log (a file) shows ``pattern``; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        assert process.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in:\n{log.read_text(errors='replace')}")
