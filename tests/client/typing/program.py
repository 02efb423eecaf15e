"""A reactor-like program using the client the way users do; ``mypy --strict`` must accept it as it is.

Every value below has a precise static type (protobuf messages, enums, the client's exceptions), so a
mistake such as comparing a ``JobState`` with a string is caught before the program runs.
"""

from __future__ import annotations

from pipelinejobs_client import (
    ClientConfig,
    InvalidTransition,
    JobsClient,
    PipelineJob,
    PipelineJobsError,
)
from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2, pipeline_pb2


def register(client: JobsClient) -> pipeline_pb2.Pipeline:
    reply: pipeline_pb2.Pipeline = client.register_pipeline(
        "fcs-etl", ["fcs-etl@0.4.0u2", ("python3", "3.11")], options={"gate": "FSC-A"}
    ).pipeline
    return reply


def states(client: JobsClient, uuid: str) -> list[job_pb2.JobState.ValueType]:
    return [event.to_state for event in client.iter_job_events(uuid)]


def run_job(config: ClientConfig) -> tuple[str, list[dict[str, dict[str, object]]]]:
    """Create a job, run it, report on it; returns its final status and its history in the seed's shape."""
    with PipelineJob(None, "UW_BIOFAB", "Yeast-Gates", "sample.uw_biofab.133737/A2", config=config) as job:
        job.setup({"key1": "value1"}).run().update({"roadrunner": "meep-meep!"})
        try:
            job.validated()
        except InvalidTransition as refused:
            state: str = refused.state
            assert state == "RUNNING"
        notification: dict[str, str | bool] = job.agave_notification()
        assert notification["persistent"] is False
        record: job_pb2.Job = job.record
        assert record.state == job_pb2.JOB_STATE_RUNNING
        status: str = job.fail().status
        history: list[dict[str, dict[str, object]]] = list(job.history)
        return status, history


def main(address: str, api_key: str) -> str:
    with JobsClient(address, api_key=api_key, timeout=5.0) as client:
        pipeline = register(client)
        config = ClientConfig(server=address, api_key=api_key, pipeline_uuid=pipeline.uuid)
        status, history = run_job(config)
        created: job_service_pb2.CreateJobResponse = client.create_job(
            pipeline.uuid, lab="UW_BIOFAB", data={"n": 2}
        )
        try:
            client.send_event(created.job.uuid, "finish", token=created.token)
        except PipelineJobsError as error:
            reason: str = error.reason
            assert reason == "INVALID_TRANSITION"
        assert states(client, created.job.uuid) == [job_pb2.JOB_STATE_CREATED]
        assert [next(iter(entry)) for entry in history] == ["CREATE", "UPDATE", "RUN", "UPDATE", "FAIL"]
        return status
