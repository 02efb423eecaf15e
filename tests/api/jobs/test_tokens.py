"""Job tokens and API keys on SendEvent: missing, wrong, another job's or expired tokens change nothing;
accepted events extend a token; admin keys send events without one, and only they send reset/ready; the
cap on a job's tokens holds under concurrent CreateJobs. Who gets tokens at all: tests/security/."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import grpc
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_service_pb2
from tests.api.jobs.helpers import (
    Document,
    event_label,
    get_job,
    refused,
    rejected,
    snapshot,
    token_hash,
    when,
)
from tests.support import ADMIN, CLIENT, Stubs, create_job, error_info, history, send, state_name


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


def test_concurrent_creators_cannot_pass_the_token_cap_together(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    # The count is in the update's filter: of ten CreateJobs racing for the last free place, one wins.
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    for _ in range(62):
        create_job(api, pipeline)

    def attempt() -> str:
        try:
            create_job(api, pipeline)
        except grpc.RpcError as error:
            return str(error_info(error).reason)
        return "issued"

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(lambda _: attempt(), range(10)))
    assert sorted(outcomes) == ["TOO_MANY_TOKENS"] * 9 + ["issued"]
    document = db.jobs.find_one({"_id": uuid})
    assert document is not None
    assert len(document["tokens"]) == 64
    assert send(api, uuid, "run", token=job.token).event.seq == 2
