"""The shim's operational surface: health, metrics, OpenAPI, secrets kept out of logs, and 503s when
the server or its database is down (and recovery without a restart)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_server.shim import ShimSettings
from pipelinejobs_server.shim.statuses import AGAVE, TAPIS
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import ServerThread, ShimThread, test_settings
from tests.shim.helpers import agave_params, http_client, new_job, running_job
from tests.support import CALLBACK_KEY_SECRET, CLIENT_KEY, eventually


def test_healthz_is_ready_when_the_server_serves(http: httpx.Client) -> None:
    response = http.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"ready": True, "server": "SERVING"})


def test_metrics_count_callbacks_by_status_outcome_and_code(
    http: httpx.Client, jobs: JobsClient, pipeline: str
) -> None:
    created = running_job(jobs, pipeline)
    http.get("/v1/callbacks/agave", params=agave_params(created, "HEARTBEAT"))
    http.get("/v1/callbacks/agave", params=agave_params(created, "HEARTBEAT"))
    http.get("/v1/callbacks/agave", params=agave_params(created, "NO_SUCH_STATUS_" + "X" * 40))
    http.get("/v1/callbacks/agave", params=agave_params(created, "HEARTBEAT", token="wrong-token"))
    response = http.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    labels = 'code="{}",endpoint="agave",outcome="{}",status="{}"'
    for code, outcome, status in [
        ("200", "applied", "HEARTBEAT"),
        ("200", "replayed", "HEARTBEAT"),
        ("200", "unmapped", "OTHER"),  # label values stay in a closed set
        ("401", "error", "HEARTBEAT"),
    ]:
        assert f"pipelinejobs_shim_callbacks_total{{{labels.format(code, outcome, status)}}} 1.0" in text, (
            text
        )
    assert 'pipelinejobs_shim_callback_seconds_bucket{endpoint="agave",le="0.5"}' in text
    assert "NO_SUCH_STATUS" not in text


def test_the_openapi_description_is_served_and_matches_the_tables(http: httpx.Client) -> None:
    document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert set(document["paths"]) == {
        "/v1/callbacks/agave",
        "/v1/callbacks/tapis",
        "/v1/events",
        "/v1/feed/events",
        "/actors/v2/{manager_id}/messages",
        "/healthz",
        "/metrics",
    }
    status = next(
        p for p in document["paths"]["/v1/callbacks/agave"]["get"]["parameters"] if p["name"] == "status"
    )
    assert status["schema"]["enum"] == list(AGAVE)
    tapis = document["paths"]["/v1/callbacks/tapis"]["post"]["requestBody"]["content"]["application/json"]
    assert tapis["schema"]["properties"]["type"]["enum"] == [f"jobs.JOB_NEW_STATUS.{s}" for s in TAPIS]


def test_no_token_or_nonce_reaches_any_log_line(
    shim: ShimThread, jobs: JobsClient, pipeline: str, caplog: pytest.LogCaptureFixture
) -> None:
    nonce = "SD2E_nonce_for_the_log_test"
    guarded = ShimThread(
        ShimSettings(
            server=shim.settings.server, callback_key_secret=CALLBACK_KEY_SECRET, callback_nonce=nonce
        )
    ).start()
    created = new_job(jobs, pipeline)
    try:
        with caplog.at_level(logging.DEBUG), http_client(guarded.url) as http:
            params = agave_params(created, "RUNNING", **{"x-nonce": nonce})
            assert http.post("/v1/callbacks/agave", params=params, json={"id": "agave-1"}).status_code == 200
            http.get("/v1/callbacks/agave", params={**params, "status": "${STATUS}"})
            http.get("/v1/callbacks/agave", params={**params, "uuid": "not-a-uuid"})
            http.get("/v1/callbacks/agave", params={**params, "x-nonce": "wrong-" + nonce})
            http.post("/v1/events", json={"uuid": created.job.uuid, "event": "bogus", "token": created.token})
            http.post("/actors/v2/G56vjoAVzGkkq/messages", params=params, content=b"\xff")

            def access_lines() -> list[logging.LogRecord]:
                return [r for r in caplog.records if r.name == "pipelinejobs.shim.access"]

            # The shim writes a request's line after the answer has gone out: wait for the last one here,
            # while INFO is still captured, rather than race it.
            eventually(lambda: len(access_lines()) >= 6, timeout_s=10, what="six access lines")
    finally:
        guarded.stop()
    access = access_lines()
    assert len(access) == 6, [r.getMessage() for r in caplog.records]
    assert "token=REDACTED" in access[0].getMessage()
    # Every logger in this process (shim, uvicorn, the gRPC server, pymongo's command log), except the
    # test's own HTTP client, which prints the URLs it calls.
    for record in caplog.records:
        if record.name.startswith(("httpx", "httpcore")):
            continue
        text = record.getMessage() + (record.exc_text or "")
        assert created.token not in text, record.name
        assert nonce not in text, record.name


def test_503_when_the_server_does_not_answer(jobs: JobsClient, pipeline: str, closed_port: int) -> None:
    dead = f"127.0.0.1:{closed_port}"  # bound but never listening: refused at once
    shim = ShimThread(
        ShimSettings(server=dead, callback_key_secret=CALLBACK_KEY_SECRET, call_timeout_s=2)
    ).start()
    try:
        with http_client(shim.url) as http:
            health = http.get("/healthz")
            assert (health.status_code, health.json()["ready"]) == (503, False)
            started = time.monotonic()
            created = new_job(jobs, pipeline)
            response = http.get("/v1/callbacks/agave", params=agave_params(created, "RUNNING"))
            assert (response.status_code, response.json()["error"]["reason"]) == (503, "UNAVAILABLE")
            assert response.headers["retry-after"] == "5"
            assert time.monotonic() - started < 10
    finally:
        shim.stop()


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_503_while_the_database_is_down_and_recovery_without_a_restart(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path)
    database.start()
    server = ServerThread(test_settings(database.uri, "shim_outage", db_timeout_ms=500)).start()
    # A short call deadline: the server answers DATABASE_UNAVAILABLE only after ~10 s (its pymongo
    # timeoutMS; reported), and either way the executor must get its 503 quickly. For the same reason
    # this test does not wait for health to turn NOT_SERVING (another ~10 s).
    shim = ShimThread(
        ShimSettings(server=server.address, callback_key_secret=CALLBACK_KEY_SECRET, call_timeout_s=2)
    ).start()
    restarted: EmbeddedDatabase | None = None
    try:
        with JobsClient(server.address, api_key=CLIENT_KEY) as jobs, http_client(shim.url) as http:
            pipeline = jobs.register_pipeline("fcs-etl", ["fcs-etl@1"]).pipeline.uuid
            created = new_job(jobs, pipeline)
            port = database.port
            database.stop()
            started = time.monotonic()
            response = http.get("/v1/callbacks/agave", params=agave_params(created, "RUNNING"))
            assert response.status_code == 503, response.text
            assert response.json()["error"]["reason"] in ("DATABASE_UNAVAILABLE", "DEADLINE_EXCEEDED")
            assert response.headers["retry-after"] == "5"
            assert time.monotonic() - started < 5

            restarted = EmbeddedDatabase(tmp_path, port=port)
            restarted.start()
            eventually(lambda: http.get("/healthz").status_code == 200, timeout_s=20, what="/healthz 200")
            response = http.get("/v1/callbacks/agave", params=agave_params(created, "RUNNING"))
            assert (response.status_code, response.json()["state"]) == (200, "RUNNING")
    finally:
        shim.stop()
        server.stop()
        (restarted or database).stop()
