"""Helpers of the shim tests: jobs of their own, what became of them, callback parameters, and other
shims in front of the same server. No tests here; the fixtures are in tests/conftest.py (the shim and
its server) and tests/shim/conftest.py.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Any

import httpx

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_client.names import event_name, state_name
from tests.servers import ShimThread


def http_client(base_url: str = "") -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=30)


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
