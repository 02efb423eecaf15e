"""``pipelinejobs shim`` and ``pipelinejobs up --http-port``, as programs: they start, answer, hand out
callback URLs that work, refuse an admin key, and stop cleanly on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_client.names import state_name
from tests.servers import ServerThread, wait_for_line
from tests.shim.helpers import http_client, new_job
from tests.support import ADMIN_KEY, CALLBACK_KEY_SECRET, CLIENT_KEY

PIPELINEJOBS = [sys.executable, "-m", "pipelinejobs_server"]
LISTENING = r"callback shim listening on (http://127\.0\.0\.1:\d+)"
SHIM_ENV = {"PIPELINEJOBS_CALLBACK_KEY_SECRET": CALLBACK_KEY_SECRET}


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    return env


@contextmanager
def program(
    arguments: list[str], log: Path, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*PIPELINEJOBS, *arguments],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**clean_env(), **(env or {})},
        )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def stop(process: subprocess.Popen[bytes], url: str) -> None:
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
    try:
        httpx.get(f"{url}/healthz", timeout=2)
    except httpx.TransportError:
        return
    raise AssertionError("the shim still answers after Ctrl-C")


def test_shim_relays_to_a_server_and_stops_on_ctrl_c(
    shim_server: ServerThread, jobs: JobsClient, pipeline: str, tmp_path: Path
) -> None:
    log = tmp_path / "shim.log"
    arguments = ["shim", "--server", shim_server.address, "--port", "0", "--api-key", CLIENT_KEY]
    with program(arguments, log, SHIM_ENV) as process:
        url = wait_for_line(log, LISTENING, process).group(1)
        wait_for_line(log, "press Ctrl-C to stop", process)
        created = new_job(jobs, pipeline)
        with http_client(url) as http:
            assert http.get("/healthz").status_code == 200
            params = {"uuid": created.job.uuid, "token": created.token, "status": "RUNNING"}
            assert http.get("/v1/callbacks/agave", params=params).json()["state"] == "RUNNING"
        stop(process, url)
    text = log.read_text()
    assert created.token not in text
    assert CLIENT_KEY not in text
    assert "token=REDACTED" in text, "the access line is there, masked"


def test_shim_refuses_to_run_with_an_admin_key(shim_server: ServerThread, tmp_path: Path) -> None:
    log = tmp_path / "shim.log"
    with program(
        ["shim", "--server", shim_server.address, "--port", "0", "--api-key", ADMIN_KEY], log, SHIM_ENV
    ) as process:
        assert process.wait(timeout=30) == 2
    assert "admin API key" in log.read_text()
    assert ADMIN_KEY not in log.read_text()


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_up_serves_the_shim_and_its_callback_urls_point_at_it(tmp_path: Path) -> None:
    log = tmp_path / "up.log"
    with program(
        ["up", "--data-dir", str(tmp_path / "data"), "--grpc-port", "0", "--http-port", "0"], log
    ) as process:
        wait_for_line(log, "press Ctrl-C to stop", process)
        text = log.read_text()
        url = re.search(LISTENING, text).group(1)  # type: ignore[union-attr]
        grpc_port = re.search(r"gRPC server listening on 127\.0\.0\.1:(\d+)", text).group(1)  # type: ignore[union-attr]
        assert f"callback URLs use {url}" in text
        secret = tmp_path / "data" / "callback-key.secret"
        assert f"callback key secret: {secret}" in text
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600
        assert secret.read_text().strip() not in text, "the secret itself is never printed"
        key = (tmp_path / "data" / "client.key").read_text().strip()
        with JobsClient(f"127.0.0.1:{grpc_port}", api_key=key) as jobs, http_client() as http:
            pipeline = jobs.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
            created = jobs.create_job(pipeline, lab="UW_BIOFAB", data={"up": True})
            assert created.callback_url.startswith(f"{url}/v1/callbacks/agave?")
            assert http.get(f"{url}/healthz").json() == {"ready": True, "server": "SERVING"}
            for status in ("QUEUED", "RUNNING"):
                response = http.post(
                    created.callback_url.replace("${STATUS}", status), json={"status": status}
                )
                assert response.status_code == 200, response.text
            assert state_name(jobs.get_job(created.job.uuid).state) == "RUNNING"
        stop(process, url)


def test_up_explains_a_busy_http_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                *PIPELINEJOBS,
                "up",
                "--data-dir",
                str(tmp_path / "data"),
                "--grpc-port",
                "0",
                "--http-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    assert "--http-port 0" in result.stderr
