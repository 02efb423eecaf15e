"""CreateJob over real gRPC: identity, token, callback URL and archive path; creating the same job again;
session names; what it refuses."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import partial
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.domain.identity import link_uuid
from tests.api.jobs.helpers import UNKNOWN_JOB, Document, event_label, refused, token_hash
from tests.support import CLIENT, Stubs, create_job, history, send, state_name

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ARCHIVE_PATH = re.compile(
    rf"^/products/v1/({UUID})/({UUID})/({UUID})/({UUID})/([A-Za-z0-9][A-Za-z0-9._-]*)-(\d{{8}}T\d{{6}}Z)$"
)
GENERATED_SESSION = re.compile(r"^[a-z]+-[a-z]+$")
LABS = ["UW_BIOFAB"]
EXPERIMENTS = ["Yeast-Gates"]
SAMPLES = ["sample.uw_biofab.133737/A2"]


def test_create_job_returns_identity_token_callback_and_path(api: Stubs, pipeline: str) -> None:
    before = datetime.now(UTC)
    reply = create_job(api, pipeline)
    job = reply.job

    assert reply.created is True
    assert re.fullmatch(UUID, job.uuid)
    assert job.pipeline_uuid == pipeline
    assert state_name(job.state) == "CREATED"
    assert job.seq == 1
    assert event_label(job.last_event) == "create"
    assert list(job.links.lab) == LABS
    assert list(job.links.experiment) == EXPERIMENTS
    assert list(job.links.sample) == SAMPLES

    # The token: >= 128 random bits, URL-safe, valid for the default 72 hours.
    assert len(reply.token) * 6 >= 128
    assert re.fullmatch(r"[A-Za-z0-9_-]+", reply.token)
    expires = reply.token_expire_time.ToDatetime(tzinfo=UTC)
    assert before + timedelta(hours=71) < expires < datetime.now(UTC) + timedelta(hours=73)

    # The callback URL: ready to paste into an Agave job, ${STATUS} left for the executor.
    assert "status=${STATUS}" in reply.callback_url
    query = parse_qs(urlsplit(reply.callback_url).query)
    assert query["uuid"] == [job.uuid]
    assert query["token"] == [reply.token]

    match = ARCHIVE_PATH.match(job.archive_path)
    assert match, job.archive_path
    lab, experiment, sample, pipeline_in_path, session, stamp = match.groups()
    assert lab == link_uuid("lab", LABS)
    assert experiment == link_uuid("experiment", EXPERIMENTS)
    assert sample == link_uuid("sample", SAMPLES)
    assert pipeline_in_path == pipeline
    assert session == job.session
    assert GENERATED_SESSION.match(session), session
    assert stamp == job.create_time.ToDatetime(tzinfo=UTC).strftime("%Y%m%dT%H%M%SZ")

    entries = history(api, job.uuid)
    assert len(entries) == 1
    assert entries[0].seq == 1
    assert event_label(entries[0].name) == "create"
    assert state_name(entries[0].to_state) == "CREATED"
    assert entries[0].prev_hash == ""
    assert entries[0].hash == job.head_hash


def test_token_is_stored_only_as_a_hash(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    reply = create_job(api, pipeline)
    document = db.jobs.find_one({"_id": reply.job.uuid})
    assert document is not None
    assert reply.token not in repr(document)
    assert [token["h"] for token in document["tokens"]] == [token_hash(reply.token)]


def test_create_job_again_returns_the_same_job_with_a_fresh_token(api: Stubs, pipeline: str) -> None:
    first = create_job(api, pipeline, data={"alpha": 1})
    second = create_job(api, pipeline, data={"alpha": 1})

    assert second.created is False
    assert second.job.uuid == first.job.uuid
    assert second.job.archive_path == first.job.archive_path
    assert second.job.session == first.job.session
    assert second.token
    assert second.token != first.token
    assert second.callback_url != first.callback_url
    assert len(history(api, first.job.uuid)) == 1

    # Both callers hold a working token.
    assert send(api, first.job.uuid, "run", token=first.token).event.seq == 2
    assert send(api, first.job.uuid, "update", token=second.token).event.seq == 3
    assert send(api, first.job.uuid, "update", token=first.token).event.seq == 4


def test_job_uuid_ignores_link_order_and_duplicates_but_not_data(api: Stubs, pipeline: str) -> None:
    base = create_job(api, pipeline, lab=["A", "B"], experiment=["E"], sample=["s1", "s2"])
    reordered = create_job(api, pipeline, lab=["B", "A", "A"], experiment=["E", "E"], sample=["s2", "s1"])
    assert reordered.created is False
    assert reordered.job.uuid == base.job.uuid
    assert list(reordered.job.links.lab) == ["A", "B"]

    other_data = create_job(
        api, pipeline, data={"x": 1}, lab=["A", "B"], experiment=["E"], sample=["s1", "s2"]
    )
    assert other_data.created is True
    assert other_data.job.uuid != base.job.uuid

    other_links = create_job(api, pipeline, lab=["A"], experiment=["E"], sample=["s1", "s2"])
    assert other_links.created is True
    assert other_links.job.uuid != base.job.uuid


def test_create_job_uses_the_given_session_name(api: Stubs, pipeline: str) -> None:
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline, links=job_pb2.JobLinks(lab=LABS), session="solid-snake"
    )
    reply = api.jobs.CreateJob(request, metadata=CLIENT)
    assert reply.job.session == "solid-snake"
    match = ARCHIVE_PATH.match(reply.job.archive_path)
    assert match, reply.job.archive_path
    assert match.group(5) == "solid-snake"


@pytest.mark.parametrize("session", ["-leading-dash", "has space", "a/b", "x" * 65, "ünïcode", "dot..$"])
def test_create_job_refuses_a_bad_session_name(api: Stubs, pipeline: str, session: str) -> None:
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=pipeline, links=job_pb2.JobLinks(lab=LABS), session=session
    )
    metadata = refused(
        lambda: api.jobs.CreateJob(request, metadata=CLIENT),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata["field"] == "session"


def test_create_job_for_an_unknown_pipeline_is_not_found(api: Stubs) -> None:
    refused(
        lambda: create_job(api, UNKNOWN_JOB),
        grpc.StatusCode.NOT_FOUND,
        "PIPELINE_NOT_FOUND",
    )


def test_create_job_with_an_invalid_pipeline_uuid_is_invalid(api: Stubs) -> None:
    refused(lambda: create_job(api, "not-a-uuid"), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")


def test_create_job_needs_links(api: Stubs, pipeline: str) -> None:
    for links in (job_pb2.JobLinks(), job_pb2.JobLinks(lab=[""], sample=[""])):
        request = job_service_pb2.CreateJobRequest(pipeline_uuid=pipeline, links=links)
        metadata = refused(
            partial(api.jobs.CreateJob, request, metadata=CLIENT),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert metadata["field"] == "links"


def test_create_job_needs_a_valid_api_key(api: Stubs, pipeline: str) -> None:
    request = job_service_pb2.CreateJobRequest(pipeline_uuid=pipeline, links=job_pb2.JobLinks(lab=LABS))
    refused(lambda: api.jobs.CreateJob(request), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED")
    refused(
        lambda: api.jobs.CreateJob(request, metadata=(("authorization", "Bearer not-a-key"),)),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_API_KEY",
    )
