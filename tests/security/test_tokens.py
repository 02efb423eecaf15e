"""F1: a client key could mint a working token for any job by repeating its CreateJob, and 64 more
repeats evicted the executor's token. Now only the job's creator (or an admin) gets a fresh token, live
tokens are never evicted (past the cap CreateJob is refused), and an admin can revoke tokens."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial

import grpc
import pytest
from pymongo.database import Database

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from tests.api.jobs.helpers import Document, get_job, refused, snapshot
from tests.servers import ServerThread, test_settings
from tests.support import ADMIN, CLIENT, CLIENT_KEY, Stubs, auth, create_job, register_pipeline, send

OTHER_CLIENT_KEY = "test-other-client-key-0123456789"
OTHER = auth(OTHER_CLIENT_KEY)
Metadata = tuple[tuple[str, str], ...]
CAP = 64  # Limits.max_tokens_per_job


@pytest.fixture
def server(mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    """A server with two client keys: the reactor's (CLIENT) and another client's (OTHER)."""
    settings = test_settings(mongodb_uri, database_name, client_keys=(CLIENT_KEY, OTHER_CLIENT_KEY))
    thread = ServerThread(settings).start()
    yield thread
    thread.stop()


@pytest.fixture
def pipeline(api: Stubs) -> str:
    return register_pipeline(api)


def again(
    api: Stubs, job: job_service_pb2.CreateJobResponse, metadata: Metadata
) -> job_service_pb2.CreateJobResponse:
    """CreateJob with the identity fields anyone with a client key reads from GetJob (the F1 replay)."""
    seen = get_job(api, job.job.uuid)
    request = job_service_pb2.CreateJobRequest(
        pipeline_uuid=seen.pipeline_uuid, links=seen.links, data=seen.data
    )
    reply: job_service_pb2.CreateJobResponse = api.jobs.CreateJob(request, metadata=metadata)
    assert reply.job.uuid == job.job.uuid
    assert not reply.created
    return reply


def stored_tokens(db: Database[Document], uuid: str) -> list[Document]:
    document = db.jobs.find_one({"_id": uuid})
    assert document is not None
    tokens: list[Document] = document["tokens"]
    return tokens


def token_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def revoke(
    api: Stubs, uuid: str, metadata: Metadata = ADMIN, *, token_id: str = "", all_tokens: bool = False
) -> int:
    request = job_service_pb2.RevokeTokensRequest(uuid=uuid, token_id=token_id, all_tokens=all_tokens)
    reply: job_service_pb2.RevokeTokensResponse = api.jobs.RevokeTokens(request, metadata=metadata)
    return reply.revoked


def test_another_client_key_gets_the_job_without_a_token(api: Stubs, pipeline: str) -> None:
    """F1: the replay by another client key returns the job, says no token was issued, and mints none."""
    victim = create_job(api, pipeline)
    uuid = victim.job.uuid
    before = snapshot(api, uuid)

    reply = again(api, victim, OTHER)

    assert reply.token == ""
    assert reply.token_withheld is True
    assert reply.token_id == ""
    assert reply.callback_url == "", "the callback URL carries a token"
    assert not reply.HasField("token_expire_time")
    assert reply.job.archive_path == victim.job.archive_path
    # Nothing it could send with: no token works, and no key alone sends events.
    refused(lambda: send(api, uuid, "run", metadata=OTHER), grpc.StatusCode.UNAUTHENTICATED, "TOKEN_REQUIRED")
    assert snapshot(api, uuid) == before


def test_the_creator_and_an_admin_still_get_fresh_tokens(api: Stubs, pipeline: str) -> None:
    """F1: a repeated CreateJob still issues a token to the key that created the job, and to an admin key."""
    job = create_job(api, pipeline)
    uuid = job.job.uuid
    mine = again(api, job, CLIENT)
    admin = again(api, job, ADMIN)
    for reply in (mine, admin):
        assert reply.token
        assert not reply.token_withheld
        assert reply.token_id == token_id(reply.token)
        assert reply.token in reply.callback_url
    assert job.token_id == token_id(job.token)
    assert send(api, uuid, "run", token=mine.token).event.seq == 2
    assert send(api, uuid, "update", token=admin.token).event.seq == 3
    assert send(api, uuid, "update", token=job.token).event.seq == 4, "earlier tokens stay valid"


def test_a_job_created_before_creators_were_recorded_gives_tokens_to_admins_only(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    """F1: a job without a recorded creator counts as created by nobody: only an admin key gets a token."""
    job = create_job(api, pipeline)
    assert db.jobs.update_one({"_id": job.job.uuid}, {"$unset": {"creator": ""}}).matched_count == 1
    for key in (CLIENT, OTHER):
        reply = again(api, job, key)
        assert reply.token == ""
        assert reply.token_withheld
    assert again(api, job, ADMIN).token


def test_the_executors_token_is_never_evicted_and_the_65th_is_refused(
    api: Stubs, pipeline: str, db: Database[Document]
) -> None:
    """F1: 64 live tokens at most, and the 65th CreateJob is refused instead of evicting the oldest."""
    executor = create_job(api, pipeline)
    uuid = executor.job.uuid
    for _ in range(CAP - 1):
        again(api, executor, CLIENT)
    assert len(stored_tokens(db, uuid)) == CAP

    for metadata in (CLIENT, ADMIN):
        info = refused(
            partial(again, api, executor, metadata), grpc.StatusCode.RESOURCE_EXHAUSTED, "TOO_MANY_TOKENS"
        )
        assert info == {"uuid": uuid, "max_tokens": str(CAP)}
    assert send(api, uuid, "run", token=executor.token).event.seq == 2, "the first token still works"

    # Expired tokens do not count: once they are gone, CreateJob issues tokens again.
    past = datetime.now(UTC) - timedelta(minutes=1)
    db.jobs.update_one({"_id": uuid}, {"$set": {"tokens.$[].exp": past}})
    fresh = again(api, executor, CLIENT)
    assert send(api, uuid, "update", token=fresh.token).event.seq == 3
    assert len(stored_tokens(db, uuid)) == 1


def test_revoke_tokens_one_by_id_or_all_and_only_with_an_admin_key(api: Stubs, pipeline: str) -> None:
    """F1: RevokeTokens ends a leaked token (by id) or all of a job's tokens; client keys may not."""
    first = create_job(api, pipeline)
    uuid = first.job.uuid
    second = again(api, first, CLIENT)
    third = again(api, first, CLIENT)

    for metadata, code, reason in (
        (CLIENT, grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED"),
        (OTHER, grpc.StatusCode.PERMISSION_DENIED, "ADMIN_REQUIRED"),
        ((), grpc.StatusCode.UNAUTHENTICATED, "API_KEY_REQUIRED"),
    ):
        refused(partial(revoke, api, uuid, metadata, all_tokens=True), code, reason)
    assert send(api, uuid, "run", token=first.token).event.seq == 2

    assert revoke(api, uuid, token_id=second.token_id) == 1
    refused(
        lambda: send(api, uuid, "update", token=second.token),
        grpc.StatusCode.UNAUTHENTICATED,
        "INVALID_TOKEN",
    )
    assert send(api, uuid, "update", token=first.token).event.seq == 3
    assert revoke(api, uuid, token_id=second.token_id) == 0, "a repeat changes nothing"

    assert revoke(api, uuid, all_tokens=True) == 2
    for token in (first.token, third.token):
        refused(
            partial(send, api, uuid, "update", token=token), grpc.StatusCode.UNAUTHENTICATED, "INVALID_TOKEN"
        )
    # The creator rotates: a fresh token for the executor's new callback URL.
    rotated = again(api, first, CLIENT)
    assert send(api, uuid, "update", token=rotated.token).event.seq == 4


@pytest.mark.parametrize(
    ("chosen", "all_tokens"),
    [("", False), ("0123456789abcdef", True), ("not-hex", False), ("ABCDEF0123456789", False)],
    ids=["neither", "both", "not-hex", "upper-case"],
)
def test_revoke_tokens_needs_exactly_one_well_formed_choice(
    api: Stubs, pipeline: str, chosen: str, all_tokens: bool
) -> None:
    """F1: RevokeTokens says which tokens: one id (16 lower-case hex digits) or all, never a guess."""
    job = create_job(api, pipeline)
    refused(
        lambda: revoke(api, job.job.uuid, token_id=chosen, all_tokens=all_tokens),
        grpc.StatusCode.INVALID_ARGUMENT,
        "INVALID_ARGUMENT",
    )
    assert send(api, job.job.uuid, "run", token=job.token).event.seq == 2


def test_revoke_tokens_of_an_unknown_job_is_not_found(api: Stubs) -> None:
    """F1: revoking names a job that exists (the caller holds an admin key: nothing to hide)."""
    refused(
        lambda: revoke(api, "0badc0de-0000-5000-8000-00000000abcd", all_tokens=True),
        grpc.StatusCode.NOT_FOUND,
        "JOB_NOT_FOUND",
    )


def test_state_is_not_touched_by_token_changes(api: Stubs, pipeline: str) -> None:
    """F1: minting, withholding and revoking tokens never touch the job's state or history."""
    job = create_job(api, pipeline)
    before = snapshot(api, job.job.uuid)
    again(api, job, OTHER)
    again(api, job, CLIENT)
    revoke(api, job.job.uuid, all_tokens=True)
    assert snapshot(api, job.job.uuid) == before
    assert get_job(api, job.job.uuid).state == job_pb2.JOB_STATE_CREATED
