"""F2: a callback's idempotency key cannot be predicted, so no one can pre-claim an executor's callback.

The keys are HMACs with the shim's secret: the same on every replica (a retry that reaches another
replica still replays), unknown to everyone else. A real shim in front of a real server.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from dataclasses import replace

import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_server.settings import SettingsError
from pipelinejobs_server.shim import ShimSettings
from tests.servers import ShimThread
from tests.shim.helpers import agave_params, event_names, http_client, running_job, state, with_settings


def public_key(endpoint: str, job_uuid: str, status: str, raw: bytes) -> str:
    """The key as it was derived from public values only (and documented): anyone could compute it."""
    body = hashlib.sha256(raw).hexdigest().encode()
    fingerprint = hashlib.sha256(b"\0".join([endpoint.encode(), job_uuid.encode(), status.encode(), body]))
    return f"{endpoint}:{status}:{fingerprint.hexdigest()}"


def test_a_token_holder_cannot_pre_claim_the_finished_callback(
    shim: ShimThread, shim_jobs: JobsClient, shim_pipeline: str
) -> None:
    """F2: an ``update`` sent with the FINISHED callback's key made the real callback 409 forever."""
    created = running_job(shim_jobs, shim_pipeline)
    uuid = created.job.uuid
    for guess in (public_key("agave", uuid, "FINISHED", b""), f"agave:FINISHED:{'0' * 64}"):
        shim_jobs.send_event(uuid, "update", token=created.token, idempotency_key=guess)
    with http_client(shim.url) as http:
        answer = http.get("/v1/callbacks/agave", params=agave_params(created, "FINISHED"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["outcome"] == "applied"
    assert state(shim_jobs, uuid) == "FINISHED"
    assert event_names(shim_jobs, uuid) == ["create", "run", "update", "update", "finish"]


def test_replicas_sharing_the_secret_agree_on_a_key_and_other_secrets_do_not(
    shim: ShimThread, shim_jobs: JobsClient, shim_pipeline: str
) -> None:
    """F2: the key is keyed by the secret, so it must be the same on every replica of one deployment."""
    created = running_job(shim_jobs, shim_pipeline)
    replica = with_settings(shim)  # another replica, same secret
    other = with_settings(shim, callback_key_secret="another-deployment-secret-0123456789")
    try:
        body = b'{"status": "HEARTBEAT", "lastUpdated": "2026-12-01T10:00:00Z"}'
        params = agave_params(created, "HEARTBEAT")
        outcomes = []
        for url in (shim.url, replica.url, other.url):
            with http_client(url) as http:
                outcomes.append(
                    http.post("/v1/callbacks/agave", params=params, content=body).json()["outcome"]
                )
    finally:
        replica.stop()
        other.stop()
    # The retry through the replica replays; a shim with another secret sees a new callback.
    assert outcomes == ["applied", "replayed", "applied"]


def test_a_shim_without_a_strong_secret_does_not_start() -> None:
    """F2: without the secret the keys would be public again, so the shim refuses to run."""
    for environ in ({}, {"PIPELINEJOBS_CALLBACK_KEY_SECRET": "short"}):
        with pytest.raises(SettingsError, match="PIPELINEJOBS_CALLBACK_KEY_SECRET"):
            ShimSettings.from_environ(environ)
    with pytest.raises(SettingsError, match="PIPELINEJOBS_CALLBACK_KEY_SECRET"):
        replace(ShimSettings(), callback_key_secret="").validate()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    result = subprocess.run(
        [sys.executable, "-m", "pipelinejobs_server", "shim", "--port", "0"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error:")
    assert "PIPELINEJOBS_CALLBACK_KEY_SECRET" in result.stderr
