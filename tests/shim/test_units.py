"""The shim's pure parts, without a server: status tables and their docs, the shared error table,
idempotency keys, body handling, redaction and settings."""

from __future__ import annotations

import logging
import subprocess
import sys
from typing import Any

import grpc
import pytest

from pipelinejobs_client import errors as client_errors
from pipelinejobs_server.codes import TABLE, codes_for, http_status
from pipelinejobs_server.domain import errors, fsm
from pipelinejobs_server.settings import SettingsError
from pipelinejobs_server.shim import failures, statuses
from pipelinejobs_server.shim.body import callback_data, callback_key, without
from pipelinejobs_server.shim.messages import EVENT_SCHEMA, EVENTS
from pipelinejobs_server.shim.settings import ShimSettings
from pipelinejobs_server.web import failures as web_failures
from pipelinejobs_server.web.body import BodyTooLarge
from pipelinejobs_server.web.logs import RedactingFilter, redact, redact_query
from tests.support import ROOT

AGAVE_V2 = [
    "PENDING",
    "PROCESSING_INPUTS",
    "STAGING_INPUTS",
    "STAGED",
    "STAGING_JOB",
    "SUBMITTING",
    "QUEUED",
    "RUNNING",
    "PAUSED",
    "CLEANING_UP",
    "ARCHIVING",
    "ARCHIVING_FINISHED",
    "ARCHIVING_FAILED",
    "FINISHED",
    "KILLED",
    "STOPPED",
    "FAILED",
    "HEARTBEAT",
]
TAPIS_V3 = [
    "PENDING",
    "PROCESSING_INPUTS",
    "STAGING_INPUTS",
    "STAGING_JOB",
    "SUBMITTING_JOB",
    "QUEUED",
    "RUNNING",
    "ARCHIVING",
    "BLOCKED",
    "PAUSED",
    "FINISHED",
    "CANCELLED",
    "FAILED",
]


def test_the_tables_cover_every_status_of_both_executors() -> None:
    assert sorted(statuses.AGAVE) == sorted(AGAVE_V2)
    assert len(AGAVE_V2) == 18
    assert sorted(statuses.TAPIS) == sorted(TAPIS_V3)
    assert len(TAPIS_V3) == 13


@pytest.mark.parametrize("executor", ["agave", "tapis"])
def test_every_end_ends_the_job_and_nothing_else_does(executor: str) -> None:
    ends = {"FINISHED", "FAILED", "KILLED", "STOPPED", "ARCHIVING_FAILED", "CANCELLED"}
    for status, rule in statuses.TABLES[executor].items():
        assert fsm.permission(rule.event) is fsm.Permission.JOB_TOKEN, status
        after = fsm.decide("RUNNING", rule.event).to_state
        assert (after in ("FINISHED", "FAILED")) == (status in ends), status
    assert statuses.TABLES[executor]["FINISHED"].event == "finish"


def test_a_table_naming_an_event_a_callback_cannot_send_fails_at_import() -> None:
    for event in ("explode", "reset", "create"):
        with pytest.raises(ValueError, match="cannot send"):
            statuses._table(("X", event, "why"))


def test_docs_callbacks_md_carries_the_tables_as_they_are() -> None:
    page = ROOT / "docs" / "callbacks.md"
    check = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "gen_docs.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert check.returncode == 0, f"run `make docs`: {check.stderr}"
    text = page.read_text()
    for status in AGAVE_V2 + TAPIS_V3:
        assert f"| `{status}` |" in text


def test_event_messages_accept_the_events_a_job_token_may_send() -> None:
    assert set(EVENTS) == set(fsm.EVENTS) - {"create", "reset", "ready"}
    assert EVENT_SCHEMA["properties"]["event"]["enum"] == list(EVENTS)


def _domain_errors(cls: type[errors.PipelineJobsError]) -> list[type[errors.PipelineJobsError]]:
    return [cls, *(sub for child in cls.__subclasses__() for sub in _domain_errors(child))]


@pytest.mark.parametrize("cls", _domain_errors(errors.PipelineJobsError), ids=lambda cls: cls.__name__)
def test_http_answers_for_relayed_errors_come_from_the_one_table(cls: type[errors.PipelineJobsError]) -> None:
    error = cls.__new__(cls)
    codes = codes_for(error)
    # By reason, whatever code the transport reported; by code when the reason is unknown.
    assert http_status(cls.reason, grpc.StatusCode.UNKNOWN) == codes.http
    assert http_status("", codes.grpc) in {row.http for row in TABLE.values() if row.grpc == codes.grpc}


def test_every_reason_the_client_knows_maps_like_the_server_does() -> None:
    by_reason = {cls.reason: cls for cls in _domain_errors(errors.PipelineJobsError)}
    for reason in client_errors.BY_REASON:
        assert http_status(reason, grpc.StatusCode.UNKNOWN) == TABLE[_row(by_reason[reason])].http


def _row(cls: type[errors.PipelineJobsError]) -> type[errors.PipelineJobsError]:
    return next(klass for klass in cls.__mro__ if klass in TABLE)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (grpc.StatusCode.UNAVAILABLE, 503),
        (grpc.StatusCode.DEADLINE_EXCEEDED, 503),
        (grpc.StatusCode.UNAUTHENTICATED, 401),
        (grpc.StatusCode.FAILED_PRECONDITION, 409),
        (grpc.StatusCode.INTERNAL, 500),
        (grpc.StatusCode.UNKNOWN, 500),
    ],
)
def test_errors_without_a_reason_map_by_grpc_code(code: grpc.StatusCode, status: int) -> None:
    assert http_status("", code) == status
    assert web_failures.failure(client_errors.PipelineJobsError("down", code=code)).status == status


def test_shim_refusals_use_the_table_too() -> None:
    assert web_failures.failure(failures.InvalidNonce("no")).status == 403
    assert web_failures.failure(BodyTooLarge("big")).status == 413
    assert web_failures.failure(failures.UnresolvedPlaceholder("${STATUS}")).status == 400
    assert web_failures.failure(errors.TokenRequired("no token")).status == 401


def test_callback_keys_depend_on_content_and_the_secret_only() -> None:
    secret = b"s" * 32
    key = callback_key(secret, "agave", "u-1", "RUNNING", b'{"a": 1}')
    assert key == callback_key(secret, "agave", "u-1", "RUNNING", b'{"a": 1}')
    assert key.startswith("agave:RUNNING:")
    assert len(key) <= 200
    assert key.isprintable()
    assert " " not in key
    assert len(callback_key(secret, "agave", "u-1", "R" * 128, b"")) <= 200  # the longest status
    others = {
        callback_key(secret, "tapis", "u-1", "RUNNING", b'{"a": 1}'),
        callback_key(secret, "agave", "u-2", "RUNNING", b'{"a": 1}'),
        callback_key(secret, "agave", "u-1", "FINISHED", b'{"a": 1}'),
        callback_key(secret, "agave", "u-1", "RUNNING", b'{"a":1}'),
        callback_key(b"t" * 32, "agave", "u-1", "RUNNING", b'{"a": 1}'),
    }
    assert key not in others
    assert len(others) == 5


def test_only_the_token_is_taken_out_of_relayed_data() -> None:
    token = "T" * 32
    data = {"url": f"https://x/?token={token}&uuid=u", token: [token, {"n": 1, "f": 2.5, "b": None}]}
    assert without(data, token, "M") == {
        "url": "https://x/?token=M&uuid=u",
        "M": ["M", {"n": 1, "f": 2.5, "b": None}],
    }
    other = {"token": "someone-else's", "nested": [{"x": "REDACTED?"}, 1, None, True]}
    assert without(other, token, "M") == other
    assert without({"a": "abc"}, "b", "M") == {"a": "abc"}, "too short to be a token: nothing is masked"


@pytest.mark.parametrize(
    ("raw", "data"),
    [
        (b"", {"status": "S"}),
        (b"  \n", {"status": "S"}),
        (b'{"status": "RUNNING", "id": 1}', {"status": "RUNNING", "id": 1}),
        (b"[1, 2]", {"status": "S", "body": [1, 2]}),
        (b'"text"', {"status": "S", "body": "text"}),
        (b"status=FAILED&x=1", {"status": "S", "body": "status=FAILED&x=1"}),
        (b'{"x": NaN}', {"status": "S", "body": '{"x": NaN}'}),
        (b'{"x": 1e999}', {"status": "S", "body": '{"x": 1e999}'}),
        (b"\xff\xfe", {"status": "S", "body": "\ufffd\ufffd"}),
    ],
)
def test_what_becomes_data(raw: bytes, data: dict[str, Any]) -> None:
    assert callback_data(raw, "S") == data


def test_query_strings_are_redacted_even_when_encoded() -> None:
    query = "uuid=u&tok%65n=s3cret&x-nonce=n0nce&status=${STATUS}&TOKEN=s3cret2"
    redacted = redact_query(query)
    assert "s3cret" not in redacted
    assert "n0nce" not in redacted
    assert redacted == "uuid=u&token=REDACTED&x-nonce=REDACTED&status=${STATUS}&TOKEN=REDACTED"


def test_text_is_redacted() -> None:
    text = "GET /x?uuid=u&token=abc123&status=R \"token\": \"abc123\" {'token': 'abc123'} Bearer k3y"
    assert "abc123" not in redact(text)
    assert "k3y" not in redact(text)
    assert redact("the secret plain-s3cret here", ["plain-s3cret"]) == "the secret REDACTED here"


def test_the_filter_redacts_uvicorns_access_line_and_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.shim.redaction")
    logger.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger="test.shim.redaction"):
            logger.info(
                '%s - "%s %s HTTP/1.1" %d', "127.0.0.1:1", "POST", "/v1/callbacks/agave?token=SECRET1", 200
            )
            try:
                raise ValueError("bad url ?token=SECRET2&status=X")
            except ValueError:
                logger.exception("failed")
    finally:
        logger.filters.clear()
    assert "SECRET" not in caplog.text
    assert "token=REDACTED" in caplog.text


def test_settings_come_from_an_injectable_mapping() -> None:
    settings = ShimSettings.from_environ(
        {
            "PIPELINEJOBS_SERVER": "jobs:50051",
            "PIPELINEJOBS_HTTP_PORT": "0",
            "PIPELINEJOBS_CALLBACK_NONCE": " n ",
            "PIPELINEJOBS_MAX_CALLBACK_BYTES": "2048",
            "PIPELINEJOBS_CALLBACK_KEY_SECRET": " " + "k" * 32 + " ",
        }
    )
    assert (settings.server, settings.port, settings.callback_nonce, settings.max_body_bytes) == (
        "jobs:50051",
        0,
        "n",
        2048,
    )
    assert settings.callback_key_secret == "k" * 32
    assert "k" * 32 not in repr(settings)
    secret = {"PIPELINEJOBS_CALLBACK_KEY_SECRET": "k" * 32}
    assert ShimSettings.from_environ(secret) == ShimSettings(callback_key_secret="k" * 32)
    for bad in (
        {"PIPELINEJOBS_HTTP_PORT": "soon"},
        {"PIPELINEJOBS_SERVER": "nohost"},
        {"PIPELINEJOBS_MAX_CALLBACK_BYTES": "0"},
    ):
        with pytest.raises(SettingsError):
            ShimSettings.from_environ({**secret, **bad})
