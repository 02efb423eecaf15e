"""JobService through real gRPC against the embedded database (DESIGN sections 3-7, the seed's story).

Every test talks to a real server over a real channel. Tests that need the database to change behind the
server's back (an expired token, an edited history, a crash between the log insert and the record's
compare-and-set) do it with a plain pymongo client on the test's own database.
"""

from __future__ import annotations

import hashlib
import itertools
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any
from urllib.parse import parse_qs, urlsplit

import grpc
import pytest
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.domain.identity import link_uuid
from pipelinejobs_server.settings import Limits
from tests.servers import ServerThread, test_settings
from tests.support import (
    ADMIN,
    CLIENT,
    Stubs,
    create_job,
    error_info,
    history,
    register_pipeline,
    send,
    state_name,
    stubs,
)

Document = dict[str, Any]
Metadata = tuple[tuple[str, str], ...]

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
ARCHIVE_PATH = re.compile(
    rf"^/products/v1/({UUID})/({UUID})/({UUID})/({UUID})/([A-Za-z0-9][A-Za-z0-9._-]*)-(\d{{8}}T\d{{6}}Z)$"
)
GENERATED_SESSION = re.compile(r"^[a-z]+-[a-z]+$")
UNKNOWN_JOB = "0badc0de-0000-5000-8000-00000000abcd"
LABS = ["UW_BIOFAB"]
EXPERIMENTS = ["Yeast-Gates"]
SAMPLES = ["sample.uw_biofab.133737/A2"]


# -- fixtures and helpers ------------------------------------------------------------------------------------


@pytest.fixture
def pipeline(api: Stubs) -> str:
    return register_pipeline(api)


@contextmanager
def other_server(uri: str, database: str, **changes: Any) -> Iterator[Stubs]:
    """A second server with changed settings, and stubs talking to it."""
    thread = ServerThread(test_settings(uri, database, **changes)).start()
    try:
        with stubs(thread.address) as s:
            yield s
    finally:
        thread.stop()


def refused(call: Callable[[], object], code: grpc.StatusCode, reason: str) -> dict[str, str]:
    """Run ``call``, expect it to fail with ``code`` and ErrorInfo ``reason``; return the metadata."""
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error = caught.value
    assert error.code() == code, f"{error.code()}: {error.details()}"
    info = error_info(error)
    assert info.reason == reason, f"{info.reason}: {error.details()}"
    assert info.domain == "pipelinejobs.v1"
    return dict(info.metadata)


def get_job(api: Stubs, job_uuid: str) -> job_pb2.Job:
    reply = api.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=job_uuid), metadata=CLIENT)
    job: job_pb2.Job = reply.job
    return job


def snapshot(api: Stubs, job_uuid: str) -> tuple[int, str, list[str]]:
    """What must not move when a request is refused: seq, state and the history's entry uuids."""
    job = get_job(api, job_uuid)
    return job.seq, state_name(job.state), [event.uuid for event in history(api, job_uuid)]


def event_label(value: int) -> str:
    return job_pb2.JobEvent.Name(job_pb2.JobEvent.ValueType(value)).removeprefix("JOB_EVENT_").lower()


def rejected(api: Stubs, job_uuid: str, metadata: Metadata = CLIENT) -> list[job_pb2.RejectedEvent]:
    reply = api.jobs.ListRejectedEvents(
        job_service_pb2.ListRejectedEventsRequest(job_uuid=job_uuid), metadata=metadata
    )
    return list(reply.events)


def verify(api: Stubs, job_uuid: str) -> job_service_pb2.VerifyHistoryResponse:
    reply: job_service_pb2.VerifyHistoryResponse = api.jobs.VerifyHistory(
        job_service_pb2.VerifyHistoryRequest(uuid=job_uuid), metadata=CLIENT
    )
    return reply


def nested(levels: int) -> dict[str, Any]:
    """A JSON object nested ``levels`` deep ({} is one level)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def when(value: Any) -> datetime:
    assert isinstance(value, datetime)
    return value


# -- CreateJob -----------------------------------------------------------------------------------------------


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


# -- the seed's story and the state machine ------------------------------------------------------------------


def test_seed_story_setup_run_update(api: Stubs, pipeline: str) -> None:
    started = datetime.now(UTC) - timedelta(seconds=1)
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token

    ran = send(api, uuid, "run", token=token, data={"key1": "value1"})
    assert state_name(ran.job.state) == "RUNNING"
    updated = send(api, uuid, "update", token=token, data={"roadrunner": "meep-meep!"})
    assert state_name(updated.job.state) == "RUNNING"
    assert updated.job.seq == 3

    entries = history(api, uuid)
    assert [event_label(e.name) for e in entries] == ["create", "run", "update"]
    assert [e.seq for e in entries] == [1, 2, 3]
    assert [dict(e.data) for e in entries] == [{}, {"key1": "value1"}, {"roadrunner": "meep-meep!"}]
    assert [(state_name(e.from_state), state_name(e.to_state)) for e in entries] == [
        ("UNSPECIFIED", "CREATED"),
        ("CREATED", "RUNNING"),
        ("RUNNING", "RUNNING"),
    ]
    assert {e.job_uuid for e in entries} == {uuid}
    assert len({e.uuid for e in entries}) == 3
    assert entries[1].uuid == ran.event.uuid
    assert entries[2].uuid == updated.event.uuid

    moments = [e.timestamp.ToDatetime(tzinfo=UTC) for e in entries]
    # Millisecond precision, in UTC (a local time mislabelled as UTC would be hours off), in order.
    assert all(e.timestamp.nanos % 1_000_000 == 0 for e in entries)
    assert all(started <= moment <= datetime.now(UTC) + timedelta(seconds=1) for moment in moments)
    assert moments == sorted(moments)
    assert moments[0] < moments[-1]

    # The hash chain: each entry links to the one before it; the record's head is the last hash.
    assert entries[0].prev_hash == ""
    for previous, entry in itertools.pairwise(entries):
        assert entry.prev_hash == previous.hash
    assert len({e.hash for e in entries}) == 3
    current = get_job(api, uuid)
    assert current.head_hash == entries[-1].hash
    assert event_label(current.last_event) == "update"
    assert current.update_time.ToDatetime(tzinfo=UTC) == moments[-1]


FINALIZE_PATH = [
    ("update", "CREATED"),
    ("resource", "CREATED"),
    ("run", "RUNNING"),
    ("run", "RUNNING"),
    ("update", "RUNNING"),
    ("resource", "RUNNING"),
    ("finish", "FINISHED"),
    ("finish", "FINISHED"),
    ("indexed", "FINISHED"),
    ("index", "INDEXING"),
    ("index", "INDEXING"),
    ("update", "INDEXING"),
    ("indexed", "FINISHED"),
    ("validate", "VALIDATING"),
    ("update", "VALIDATING"),
    ("validated", "VALIDATED"),
    ("validated", "VALIDATED"),
    ("validate", "VALIDATING"),
    ("validated", "VALIDATED"),
    ("finalize", "FINALIZED"),
]
PATHS = {
    "to-finalized": FINALIZE_PATH,
    "finalized-retired": [*FINALIZE_PATH, ("retire", "RETIRED")],
    "created-failed-retired": [("fail", "FAILED"), ("retire", "RETIRED")],
    "running-failed-retired": [("run", "RUNNING"), ("fail", "FAILED"), ("retire", "RETIRED")],
    "indexing-failed-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("index", "INDEXING"),
        ("fail", "FAILED"),
        ("retire", "RETIRED"),
    ],
    "validating-failed-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("fail", "FAILED"),
        ("retire", "RETIRED"),
    ],
    "finished-retired": [("run", "RUNNING"), ("finish", "FINISHED"), ("retire", "RETIRED")],
    "validating-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("retire", "RETIRED"),
    ],
    "validated-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("validated", "VALIDATED"),
        ("retire", "RETIRED"),
    ],
    "rejected-retired": [
        ("run", "RUNNING"),
        ("finish", "FINISHED"),
        ("validate", "VALIDATING"),
        ("reject", "REJECTED"),
        ("retire", "RETIRED"),
    ],
}


@pytest.mark.parametrize("path", PATHS.values(), ids=PATHS.keys())
def test_event_path(api: Stubs, pipeline: str, path: list[tuple[str, str]]) -> None:
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token
    state = "CREATED"
    for seq, (event, expected) in enumerate(path, start=2):
        reply = send(api, uuid, event, token=token, data={"step": seq})
        assert reply.replayed is False
        assert reply.event.seq == seq
        assert (state_name(reply.event.from_state), state_name(reply.event.to_state)) == (state, expected)
        assert state_name(reply.job.state) == expected
        assert reply.job.seq == seq
        state = expected

    entries = history(api, uuid)
    assert [event_label(e.name) for e in entries] == ["create", *(event for event, _ in path)]
    assert [e.seq for e in entries] == list(range(1, len(path) + 2))
    assert state_name(get_job(api, uuid).state) == state
    check = verify(api, uuid)
    assert check.valid, check.reason
    assert check.checked == len(path) + 1

    # The end of a path is final for job tokens: run is refused, naming the state and the event.
    metadata = refused(
        lambda: send(api, uuid, "run", token=token),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert metadata == {"state": state, "event": "run"}
    assert len(history(api, uuid)) == len(path) + 1


def test_fail_records_and_keeps_history(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token
    send(api, uuid, "run", token=token)
    send(api, uuid, "update", token=token, data={"progress": 50})
    failed = send(api, uuid, "fail", token=token, data={"reason": "node lost"})

    assert state_name(failed.job.state) == "FAILED"
    current = get_job(api, uuid)
    assert state_name(current.state) == "FAILED"
    assert current.seq == 4
    entries = history(api, uuid)
    assert [event_label(e.name) for e in entries] == ["create", "run", "update", "fail"]
    assert dict(entries[-1].data) == {"reason": "node lost"}
    assert verify(api, uuid).valid


# -- tokens and credentials ----------------------------------------------------------------------------------


def test_missing_token_is_unauthenticated_and_changes_nothing(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    refused(lambda: send(api, job.job.uuid, "run"), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REQUIRED")
    # A CLIENT API key is not a job token either.
    refused(
        lambda: send(api, job.job.uuid, "run", metadata=CLIENT),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_REQUIRED",
    )
    assert snapshot(api, job.job.uuid) == before


def test_wrong_token_is_unauthenticated_and_changes_nothing(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    refused(
        lambda: send(api, job.job.uuid, "run", token=job.token[:-1] + ("A" if job.token[-1] != "A" else "B")),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_TOKEN",
    )
    assert snapshot(api, job.job.uuid) == before
    assert rejected(api, job.job.uuid) == []


def test_token_of_another_job_is_invalid(api: Stubs, pipeline: str) -> None:
    mine = create_job(api, pipeline, data={"n": 1})
    theirs = create_job(api, pipeline, data={"n": 2})
    before = snapshot(api, mine.job.uuid)
    refused(
        lambda: send(api, mine.job.uuid, "run", token=theirs.token),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_TOKEN",
    )
    assert snapshot(api, mine.job.uuid) == before


def test_expired_token_is_refused_and_changes_nothing(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    before = snapshot(api, uuid)
    past = datetime.now(UTC) - timedelta(minutes=1)
    assert db.jobs.update_one({"_id": uuid}, {"$set": {"tokens.$[].exp": past}}).modified_count == 1

    refused(
        lambda: send(api, uuid, "update", token=job.token),
        grpc.StatusCode.UNAUTHENTICATED,
        "TOKEN_EXPIRED",
    )
    assert snapshot(api, uuid) == before
    document = db.jobs.find_one({"_id": uuid})
    assert document is not None
    assert when(document["tokens"][0]["exp"]) <= datetime.now(UTC)

    # CreateJob with the same inputs hands out a fresh, working token.
    fresh = create_job(api, pipeline)
    assert fresh.job.uuid == uuid
    assert send(api, uuid, "update", token=fresh.token).event.seq == before[0] + 1


def test_accepted_events_extend_the_token_expiry(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    first = create_job(api, pipeline)
    second = create_job(api, pipeline)
    uuid = first.job.uuid
    soon = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    db.jobs.update_one({"_id": uuid}, {"$set": {"tokens.$[].exp": soon}})

    send(api, uuid, "run", token=first.token)

    document = db.jobs.find_one({"_id": uuid})
    assert document is not None
    expiry = {token["h"]: when(token["exp"]) for token in document["tokens"]}
    assert expiry[token_hash(first.token)] > datetime.now(UTC) + timedelta(hours=71)
    # Only the token that was used moves.
    assert expiry[token_hash(second.token)] == soon


def test_admin_key_sends_ordinary_events_without_a_token(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    for seq, event in enumerate(["run", "update", "finish", "validate", "validated", "finalize"], start=2):
        reply = send(api, uuid, event, metadata=ADMIN)
        assert reply.event.seq == seq
    assert state_name(get_job(api, uuid).state) == "FINALIZED"


def test_job_token_cannot_send_reset_or_ready(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token
    send(api, uuid, "run", token=token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "reset", token=token, metadata=CLIENT),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_REQUIRED",
    )
    assert metadata["event"] == "reset"
    assert snapshot(api, uuid) == before

    send(api, uuid, "reset", metadata=ADMIN)
    before = snapshot(api, uuid)
    refused(
        lambda: send(api, uuid, "ready", token=token, metadata=CLIENT),
        grpc.StatusCode.PERMISSION_DENIED,
        "ADMIN_REQUIRED",
    )
    assert snapshot(api, uuid) == before


def test_admin_resets_a_running_job_and_readies_it(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid, token = job.job.uuid, job.token
    send(api, uuid, "run", token=token)
    reset = send(api, uuid, "reset", metadata=ADMIN)
    assert (state_name(reset.event.from_state), state_name(reset.event.to_state)) == ("RUNNING", "RESET")
    ready = send(api, uuid, "ready", metadata=ADMIN)
    assert (state_name(ready.event.from_state), state_name(ready.event.to_state)) == ("RESET", "CREATED")
    assert state_name(get_job(api, uuid).state) == "CREATED"
    assert [event_label(e.name) for e in history(api, uuid)] == ["create", "run", "reset", "ready"]

    # The job token works again from CREATED; and having once run, the job can no longer be cancelled.
    assert send(api, uuid, "run", token=token).event.seq == 5
    send(api, uuid, "reset", metadata=ADMIN)
    send(api, uuid, "ready", metadata=ADMIN)
    refused(
        lambda: api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=uuid, token=token), metadata=CLIENT),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CANCEL_NOT_ALLOWED",
    )


# -- cancel --------------------------------------------------------------------------------------------------


def test_cancel_deletes_a_created_job_and_it_can_be_created_afresh(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    job = create_job(api, pipeline, data={"cancel": "me"})
    uuid = job.job.uuid
    send(api, uuid, "update", token=job.token, data={"before": "cancel"})
    refused(
        lambda: send(api, uuid, "finish", token=job.token),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert len(rejected(api, uuid)) == 1

    api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=uuid, token=job.token), metadata=CLIENT)

    refused(lambda: get_job(api, uuid), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    refused(lambda: history(api, uuid), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    refused(lambda: verify(api, uuid), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    refused(lambda: send(api, uuid, "run", token=job.token), grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
    assert db.jobs.count_documents({"_id": uuid}) == 0
    assert db.job_events.count_documents({"job_uuid": uuid}) == 0
    assert rejected(api, uuid) == []

    again = create_job(api, pipeline, data={"cancel": "me"})
    assert again.created is True
    assert again.job.uuid == uuid
    assert again.job.seq == 1
    assert state_name(again.job.state) == "CREATED"
    assert [event_label(e.name) for e in history(api, uuid)] == ["create"]
    # The cancelled job's token died with it.
    refused(lambda: send(api, uuid, "run", token=job.token), grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    assert send(api, uuid, "run", token=again.token).event.seq == 2


def test_cancel_after_run_is_refused_and_the_job_is_intact(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    send(api, uuid, "fail", token=job.token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: api.jobs.CancelJob(
            job_service_pb2.CancelJobRequest(uuid=uuid, token=job.token), metadata=CLIENT
        ),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CANCEL_NOT_ALLOWED",
    )
    assert metadata["state"] == "FAILED"
    # Not even an admin may delete a job that has run.
    refused(
        lambda: api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=uuid), metadata=ADMIN),
        grpc.StatusCode.FAILED_PRECONDITION,
        "CANCEL_NOT_ALLOWED",
    )
    assert snapshot(api, uuid) == before
    assert verify(api, uuid).valid


def test_cancel_with_a_wrong_or_missing_token_is_unauthenticated(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline, data={"n": 1})
    other = create_job(api, pipeline, data={"n": 2})
    uuid = job.job.uuid
    before = snapshot(api, uuid)
    for token, reason in (("", "TOKEN_REQUIRED"), ("wrong", "INVALID_TOKEN"), (other.token, "INVALID_TOKEN")):
        request = job_service_pb2.CancelJobRequest(uuid=uuid, token=token)
        refused(
            partial(api.jobs.CancelJob, request, metadata=CLIENT),
            grpc.StatusCode.UNAUTHENTICATED,
            reason,
        )
    assert snapshot(api, uuid) == before


def test_cancel_an_unknown_job_is_not_found(api: Stubs) -> None:
    refused(
        lambda: api.jobs.CancelJob(
            job_service_pb2.CancelJobRequest(uuid=UNKNOWN_JOB, token="whatever"), metadata=CLIENT
        ),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
    )


# -- bad requests --------------------------------------------------------------------------------------------


def test_unknown_job_is_not_found(api: Stubs) -> None:
    for call in (
        lambda: get_job(api, UNKNOWN_JOB),
        lambda: send(api, UNKNOWN_JOB, "run", token="whatever"),
        lambda: send(api, UNKNOWN_JOB, "run", metadata=ADMIN),
        lambda: history(api, UNKNOWN_JOB),
        lambda: verify(api, UNKNOWN_JOB),
    ):
        metadata = refused(call, grpc.StatusCode.NOT_FOUND, "JOB_NOT_FOUND")
        assert metadata["uuid"] == UNKNOWN_JOB


@pytest.mark.parametrize(
    "bad", ["", "not-a-uuid", UNKNOWN_JOB.upper(), UNKNOWN_JOB.replace("-", ""), UNKNOWN_JOB + "0"]
)
def test_invalid_uuid_is_invalid_argument(api: Stubs, bad: str) -> None:
    for call in (
        lambda: get_job(api, bad),
        lambda: send(api, bad, "run", token="whatever"),
        lambda: history(api, bad),
        lambda: verify(api, bad),
        lambda: api.jobs.CancelJob(job_service_pb2.CancelJobRequest(uuid=bad, token="x"), metadata=CLIENT),
    ):
        metadata = refused(call, grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
        assert metadata["field"] == "uuid"


@pytest.mark.parametrize("value", [job_pb2.JOB_EVENT_UNSPECIFIED, 99, -1])
def test_unknown_event_value_is_invalid_argument(api: Stubs, pipeline: str, value: int) -> None:
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    request = job_service_pb2.SendEventRequest(
        uuid=job.job.uuid, event=job_pb2.JobEvent.ValueType(value), token=job.token
    )
    metadata = refused(lambda: api.jobs.SendEvent(request), grpc.StatusCode.INVALID_ARGUMENT, "UNKNOWN_EVENT")
    assert metadata["field"] == "event"
    assert snapshot(api, job.job.uuid) == before


def test_create_sent_as_an_event_is_a_failed_precondition(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    for metadata in ((), ADMIN):
        info = refused(
            partial(send, api, job.job.uuid, "create", token=job.token, metadata=metadata),
            grpc.StatusCode.FAILED_PRECONDITION,
            "INVALID_TRANSITION",
        )
        assert info == {"state": "CREATED", "event": "create"}
    assert snapshot(api, job.job.uuid) == before


# -- sizes and nesting ---------------------------------------------------------------------------------------


def test_event_data_over_64_kib_is_refused_and_changes_nothing(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "update", token=job.token, data={"blob": "x" * (64 * 1024)}),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "DATA_TOO_LARGE",
    )
    assert metadata["limit"] == str(64 * 1024)
    assert snapshot(api, uuid) == before
    # Just under the limit is fine.
    assert send(api, uuid, "update", token=job.token, data={"blob": "x" * (60 * 1024)}).event.seq == 3


def test_job_data_over_256_kib_is_refused(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    refused(
        lambda: create_job(api, pipeline, data={"blob": "x" * (256 * 1024)}),
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        "DATA_TOO_LARGE",
    )
    assert db.jobs.count_documents({}) == 0
    assert create_job(api, pipeline, data={"blob": "x" * (250 * 1024)}).created is True


def test_data_nested_deeper_than_32_is_invalid(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "update", token=job.token, data=nested(33)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert metadata["field"] == "data"
    refused(
        lambda: create_job(api, pipeline, data=nested(33)),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert snapshot(api, uuid) == before
    assert send(api, uuid, "update", token=job.token, data=nested(32)).event.seq == 2


def test_data_nested_far_too_deep_is_invalid_argument(api: Stubs, pipeline: str) -> None:
    """DESIGN 6.5: bad input gets a precise error; not UNKNOWN from a protobuf decode failure."""
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    before = snapshot(api, uuid)
    for call in (
        lambda: send(api, uuid, "update", token=job.token, data=nested(50)),
        lambda: create_job(api, pipeline, data=nested(50)),
    ):
        with pytest.raises(grpc.RpcError) as caught:
            call()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert snapshot(api, uuid) == before


def test_a_server_with_smaller_limits_enforces_them(mongodb_uri: str, database_name: str) -> None:
    limits = Limits(max_event_data_bytes=100, max_job_data_bytes=200, max_data_depth=3)
    with other_server(mongodb_uri, database_name, limits=limits) as small:
        pipeline = register_pipeline(small)
        job = create_job(small, pipeline, data={"k": "x" * 100})
        uuid = job.job.uuid
        assert send(small, uuid, "update", token=job.token, data={"k": "x" * 50}).event.seq == 2
        metadata = refused(
            lambda: send(small, uuid, "update", token=job.token, data={"k": "x" * 100}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "DATA_TOO_LARGE",
        )
        assert metadata["limit"] == "100"
        refused(
            lambda: create_job(small, pipeline, data={"k": "x" * 200}),
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            "DATA_TOO_LARGE",
        )
        refused(
            lambda: send(small, uuid, "update", token=job.token, data=nested(4)),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert get_job(small, uuid).seq == 2


# -- idempotency ---------------------------------------------------------------------------------------------


def test_same_key_and_payload_replays_the_original(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    first = send(api, uuid, "run", token=job.token, data={"a": 1}, key="run-1")
    assert first.replayed is False
    assert first.event.idempotency_key == "run-1"
    length = len(history(api, uuid))

    again = send(api, uuid, "run", token=job.token, data={"a": 1}, key="run-1")
    assert again.replayed is True
    assert again.event.uuid == first.event.uuid
    assert again.event.seq == first.event.seq
    assert again.event.hash == first.event.hash
    assert again.job.seq == first.job.seq
    assert len(history(api, uuid)) == length

    # Still a replay after the job has moved on.
    send(api, uuid, "update", token=job.token, key="update-1")
    late = send(api, uuid, "run", token=job.token, data={"a": 1}, key="run-1")
    assert late.replayed is True
    assert late.event.uuid == first.event.uuid
    assert late.job.seq == 3
    assert len(history(api, uuid)) == length + 1


def test_same_key_with_a_different_payload_is_aborted(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "update", token=job.token, data={"a": 1}, key="k")
    before = snapshot(api, uuid)
    for event, data in (("update", {"a": 2}), ("update", {}), ("run", {"a": 1})):
        metadata = refused(
            partial(send, api, uuid, event, token=job.token, data=data, key="k"),
            grpc.StatusCode.ABORTED,
            "IDEMPOTENCY_CONFLICT",
        )
        assert metadata["seq"] == "2"
    assert snapshot(api, uuid) == before


def test_retried_fail_replays_instead_of_being_refused(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    failed = send(api, uuid, "fail", token=job.token, data={"why": "oom"}, key="fail-1")
    assert state_name(failed.job.state) == "FAILED"

    retried = send(api, uuid, "fail", token=job.token, data={"why": "oom"}, key="fail-1")
    assert retried.replayed is True
    assert retried.event.uuid == failed.event.uuid
    assert state_name(retried.job.state) == "FAILED"
    # Not refused: kept only as a late duplicate, so operators can see it arrived twice.
    assert [(record.event, record.reason) for record in rejected(api, uuid)] == [("fail", "DUPLICATE")]

    # A fail without that key is a new event, and FAILED does not allow it.
    refused(
        lambda: send(api, uuid, "fail", token=job.token, data={"why": "oom"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert get_job(api, uuid).seq == 3


def test_invalid_idempotency_key_is_invalid_argument(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    for key in ("has space", "x" * 201, "tab\t"):
        metadata = refused(
            partial(send, api, job.job.uuid, "run", token=job.token, key=key),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )
        assert metadata["field"] == "idempotency_key"
    assert get_job(api, job.job.uuid).seq == 1


# -- rejected events -----------------------------------------------------------------------------------------


def test_refused_events_are_listed_with_reason_and_state(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline, data={"n": 1})
    other = create_job(api, pipeline, data={"n": 2})
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token)
    before = snapshot(api, uuid)
    metadata = refused(
        lambda: send(api, uuid, "validate", token=job.token, data={"note": "too early"}),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert metadata == {"state": "RUNNING", "event": "validate"}
    refused(
        lambda: send(api, other.job.uuid, "finalize", token=other.token),
        grpc.StatusCode.FAILED_PRECONDITION,
        "INVALID_TRANSITION",
    )
    assert snapshot(api, uuid) == before

    (record,) = rejected(api, uuid)
    assert record.job_uuid == uuid
    assert record.event == "validate"
    assert record.reason == "INVALID_TRANSITION"
    assert state_name(record.state) == "RUNNING"
    assert dict(record.data) == {"note": "too early"}
    assert "validate" in record.message
    assert "RUNNING" in record.message
    assert record.timestamp.ToDatetime(tzinfo=UTC) <= datetime.now(UTC)

    everything = rejected(api, "", metadata=ADMIN)
    assert sorted((r.job_uuid, r.event) for r in everything) == sorted(
        [(uuid, "validate"), (other.job.uuid, "finalize")]
    )


def test_listing_all_rejected_events_needs_admin(api: Stubs) -> None:
    refused(lambda: rejected(api, "", metadata=CLIENT), grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED")
    refused(lambda: rejected(api, "", metadata=()), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED")
    assert rejected(api, "", metadata=ADMIN) == []


# -- paging --------------------------------------------------------------------------------------------------


def test_list_job_events_pages_through_the_whole_history(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    for n in range(24):
        send(api, uuid, "update", token=job.token, data={"n": n})

    pages: list[list[int]] = []
    token = ""
    while True:
        reply = api.jobs.ListJobEvents(
            job_service_pb2.ListJobEventsRequest(uuid=uuid, page_size=10, page_token=token), metadata=CLIENT
        )
        pages.append([event.seq for event in reply.events])
        token = reply.next_page_token
        if not token:
            break
        assert len(pages) < 10, "paging does not end"

    assert [len(page) for page in pages] == [10, 10, 5]
    assert [seq for page in pages for seq in page] == list(range(1, 26))


def test_bad_page_token_or_size_is_invalid_argument(api: Stubs, pipeline: str) -> None:
    one = create_job(api, pipeline, data={"n": 1})
    two = create_job(api, pipeline, data={"n": 2})
    for n in range(3):
        send(api, one.job.uuid, "update", token=one.token, data={"n": n})
    reply = api.jobs.ListJobEvents(
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_size=2), metadata=CLIENT
    )
    assert reply.next_page_token

    for request in (
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_token="not a token!"),
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_token="e30"),  # base64url of "{}"
        # A token from another job's listing.
        job_service_pb2.ListJobEventsRequest(uuid=two.job.uuid, page_token=reply.next_page_token),
        job_service_pb2.ListJobEventsRequest(uuid=one.job.uuid, page_size=-1),
    ):
        refused(
            partial(api.jobs.ListJobEvents, request, metadata=CLIENT),
            grpc.StatusCode.INVALID_ARGUMENT,
            "INVALID_ARGUMENT",
        )


# -- VerifyHistory -------------------------------------------------------------------------------------------


def events_job(api: Stubs, pipeline: str) -> tuple[str, str]:
    """A job with five history entries; returns (uuid, token)."""
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    send(api, uuid, "run", token=job.token, data={"key1": "value1"})
    send(api, uuid, "update", token=job.token, data={"roadrunner": "meep-meep!"})
    send(api, uuid, "update", token=job.token, data={"n": 2})
    send(api, uuid, "finish", token=job.token)
    return uuid, job.token


def test_verify_history_of_an_untouched_job(api: Stubs, pipeline: str) -> None:
    uuid, _ = events_job(api, pipeline)
    check = verify(api, uuid)
    assert check.valid is True
    assert check.checked == get_job(api, uuid).seq == 5
    assert check.first_bad_seq == 0
    assert check.reason == ""


def test_verify_history_finds_an_edited_event(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    uuid, _ = events_job(api, pipeline)
    changed = db.job_events.update_one(
        {"job_uuid": uuid, "seq": 3}, {"$set": {"data_json": '{"roadrunner":"caught"}'}}
    )
    assert changed.modified_count == 1
    check = verify(api, uuid)
    assert check.valid is False
    assert check.first_bad_seq == 3
    assert check.checked == 2
    assert check.reason


def test_verify_history_finds_a_deleted_event(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    uuid, _ = events_job(api, pipeline)
    assert db.job_events.delete_one({"job_uuid": uuid, "seq": 2}).deleted_count == 1
    check = verify(api, uuid)
    assert check.valid is False
    assert check.first_bad_seq == 2


def test_verify_history_finds_a_deleted_last_event(api: Stubs, pipeline: str, db: Database[Document]) -> None:
    uuid, _ = events_job(api, pipeline)
    assert db.job_events.delete_one({"job_uuid": uuid, "seq": 5}).deleted_count == 1
    check = verify(api, uuid)
    assert check.valid is False
    assert check.first_bad_seq == 5


# -- a record left behind its log ----------------------------------------------------------------------------


def roll_record_back(db: Database[Document], uuid: str) -> Document:
    """Put the job record back at its previous entry, as if the server died between the log insert and the
    record's compare-and-set. Returns the (still logged) last entry."""
    job = db.jobs.find_one({"_id": uuid})
    assert job is not None
    last = db.job_events.find_one({"job_uuid": uuid, "seq": job["seq"]})
    previous = db.job_events.find_one({"job_uuid": uuid, "seq": job["seq"] - 1})
    assert last is not None
    assert previous is not None
    changed = db.jobs.update_one(
        {"_id": uuid, "seq": job["seq"]},
        {
            "$set": {
                "seq": previous["seq"],
                "state": previous["to_state"],
                "head_hash": previous["hash"],
                "last_event": previous["name"],
                "updated_at": previous["timestamp"],
            }
        },
    )
    assert changed.modified_count == 1
    return last


def test_a_record_behind_its_log_is_rolled_forward_on_read(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    uuid, token = events_job(api, pipeline)  # ends with finish: RUNNING -> FINISHED at seq 5
    last = roll_record_back(db, uuid)

    job = get_job(api, uuid)
    assert job.seq == 5
    assert state_name(job.state) == "FINISHED"
    assert event_label(job.last_event) == "finish"
    assert job.head_hash == last["hash"]
    stored = db.jobs.find_one({"_id": uuid})
    assert stored is not None
    assert (stored["seq"], stored["state"]) == (5, "FINISHED")

    reply = send(api, uuid, "index", token=token)
    assert reply.event.seq == 6
    assert reply.event.prev_hash == last["hash"]
    assert [e.seq for e in history(api, uuid)] == [1, 2, 3, 4, 5, 6]
    check = verify(api, uuid)
    assert check.valid, check.reason
    assert check.checked == 6


def test_a_record_behind_its_log_is_rolled_forward_by_the_next_writer(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    """DESIGN 6.3: any reader *or writer* that finds the record behind the log rolls it forward.

    'index' is legal only from the logged state (FINISHED), not from the stale record's (RUNNING): a writer
    deciding on the stale record would refuse an event the job's real state allows.
    """
    uuid, token = events_job(api, pipeline)
    last = roll_record_back(db, uuid)

    reply = send(api, uuid, "index", token=token)
    assert reply.event.seq == 6
    assert state_name(reply.event.from_state) == "FINISHED"
    assert reply.event.prev_hash == last["hash"]
    assert state_name(reply.job.state) == "INDEXING"
    assert [e.seq for e in history(api, uuid)] == [1, 2, 3, 4, 5, 6]
    assert rejected(api, uuid) == []
    assert verify(api, uuid).valid


def test_a_record_behind_its_log_on_an_allowed_event_gets_the_next_seq(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    uuid, token = events_job(api, pipeline)
    roll_record_back(db, uuid)
    # 'finish' is legal from both the stale state (RUNNING) and the real one (FINISHED): the append loses
    # seq 5 to the logged entry, the writer catches up and takes seq 6.
    reply = send(api, uuid, "finish", token=token)
    assert reply.event.seq == 6
    assert state_name(reply.event.from_state) == "FINISHED"
    job = get_job(api, uuid)
    assert (job.seq, state_name(job.state)) == (6, "FINISHED")
    assert verify(api, uuid).valid


def test_history_records_where_each_event_came_from(api: Stubs) -> None:
    created = create_job(api, register_pipeline(api), {"test": "sources"})
    uuid = created.job.uuid
    send(api, uuid, "run", token=created.token)
    send(api, uuid, "update", metadata=ADMIN)  # an admin key and no token: an operator's event
    callback = job_service_pb2.SendEventRequest(
        uuid=uuid, event=job_pb2.JOB_EVENT_UPDATE, token=created.token, source=job_pb2.EVENT_SOURCE_CALLBACK
    )
    api.jobs.SendEvent(callback)
    sources = [job_pb2.EventSource.Name(event.source) for event in history(api, uuid)]
    assert sources == [
        "EVENT_SOURCE_GRPC",
        "EVENT_SOURCE_GRPC",
        "EVENT_SOURCE_ADMIN",
        "EVENT_SOURCE_CALLBACK",
    ]

    claim = job_service_pb2.SendEventRequest(
        uuid=uuid, event=job_pb2.JOB_EVENT_UPDATE, token=created.token, source=job_pb2.EVENT_SOURCE_ADMIN
    )
    with pytest.raises(grpc.RpcError) as caught:
        api.jobs.SendEvent(claim)
    assert caught.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "ADMIN_REQUIRED"
    assert len(history(api, uuid)) == 4


def test_reject_event_keeps_what_could_not_be_applied(api: Stubs, pipeline: str) -> None:
    job = create_job(api, pipeline, {"test": "reject-event"})
    request = job_service_pb2.RejectEventRequest(
        uuid=job.job.uuid,
        token=job.token,
        event="${STATUS}",
        reason="UNMAPPED_STATUS",
        message="the executor sent an unresolved placeholder",
        source=job_pb2.EVENT_SOURCE_CALLBACK,
    )
    record = api.jobs.RejectEvent(request).event
    assert (record.event, record.reason, state_name(record.state)) == (
        "${STATUS}",
        "UNMAPPED_STATUS",
        "CREATED",
    )
    assert [r.uuid for r in rejected(api, job.job.uuid)] == [record.uuid]
    assert get_job(api, job.job.uuid).seq == 1, "a rejection never touches the history"

    bad_reason = job_service_pb2.RejectEventRequest(
        uuid=job.job.uuid, token=job.token, event="X", reason="lower"
    )
    refused(lambda: api.jobs.RejectEvent(bad_reason), grpc.StatusCode.INVALID_ARGUMENT, "INVALID_ARGUMENT")
    wrong_token = job_service_pb2.RejectEventRequest(uuid=job.job.uuid, token="nope", event="X", reason="R")
    refused(lambda: api.jobs.RejectEvent(wrong_token), grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN")
    assert len(rejected(api, job.job.uuid)) == 1
