"""The quick start: ``pipelinejobs up`` brings up the embedded database and the server, answers the
standard health check, keeps its generated keys and the database password private (the doctor reads
the password from its file), and stops everything on Ctrl-C."""

from __future__ import annotations

import http.client
import os
import re
import signal
import socket
import stat
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.servers import wait_for_line

PIPELINEJOBS = [sys.executable, "-m", "pipelinejobs_server"]


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def announced_port(pattern: str, text: str) -> int:
    """The port a banner line names: ``up`` is given port 0 for gRPC and HTTP, and says what it got."""
    match = re.search(pattern, text, re.M)
    assert match is not None, text
    return int(match.group(1))


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_up_serves_health_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                *PIPELINEJOBS,
                "up",
                "--data-dir",
                str(tmp_path / "data"),
                "--grpc-port",
                "0",
                "--http-port",
                "0",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_line(log, r"press Ctrl-C to stop", process)
        text = log.read_text()
        grpc_port = announced_port(r"^gRPC server listening on 127\.0\.0\.1:(\d+) ", text)
        http_port = announced_port(r"^callback shim listening on http://127\.0\.0\.1:(\d+)$", text)
        assert f"listening on 127.0.0.1:{grpc_port}" in text
        database_port = announced_port(r"^database: mongodb://pipelinejobs@127\.0\.0\.1:(\d+)/", text)
        password_file = tmp_path / "data" / "database.password"
        assert f"(password in {password_file}; data in {tmp_path / 'data' / 'db'})" in text
        assert password_file.read_text().strip() not in text, "the database password is never printed"
        admin_key = tmp_path / "data" / "admin.key"
        assert f"admin key: {admin_key}" in text
        assert stat.S_IMODE(admin_key.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "data" / "client.key").stat().st_mode) == 0o600
        assert admin_key.read_text().strip() not in text, "the key itself is never printed"

        health = subprocess.run(
            [*PIPELINEJOBS, "health", "--server", f"127.0.0.1:{grpc_port}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert health.returncode == 0, health.stderr
        assert "SERVING" in health.stdout
        # The doctor with the URI the banner shows and the password from the file it names.
        uri = re.search(r"^database: (\S+) ", text, re.M).group(1)  # type: ignore[union-attr]
        doctor = subprocess.run(
            [*PIPELINEJOBS, "doctor", "--mongodb-uri", uri, "--mongodb-password-file", str(password_file)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert doctor.returncode == 0, doctor.stderr
        assert doctor.stdout.startswith("healthy: database 'pipelinejobs', 0 jobs")
        assert f"callback shim listening on http://127.0.0.1:{http_port}" in text
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/healthz", timeout=10) as reply:
            assert reply.status == 200
        # The address in the banner leads a browser to the dashboard, not to a JSON 404.
        home = http.client.HTTPConnection("127.0.0.1", http_port, timeout=10)
        home.request("GET", "/")
        answer = home.getresponse()
        assert (answer.status, answer.getheader("location")) == (302, "/ui/")
        home.close()

        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=60) == 0
        assert not port_open(grpc_port)
        assert not port_open(http_port)
        assert not port_open(database_port), "the embedded database stops with the server"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_serve_without_a_database_uri_explains_what_to_set() -> None:
    env = {key: value for key, value in os.environ.items() if key != "MONGODB_URI"}
    result = subprocess.run(
        [*PIPELINEJOBS, "serve"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 2
    assert "MONGODB_URI" in result.stderr


@pytest.mark.parametrize("variable", ["PIPELINEJOBS_GRPC_PORT", "PIPELINEJOBS_TOKEN_TTL_HOURS"])
def test_a_bad_setting_is_a_one_line_error(variable: str) -> None:
    env = dict(os.environ, **{variable: "soon"})
    result = subprocess.run(
        [*PIPELINEJOBS, "serve"], capture_output=True, text=True, env=env, timeout=60, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:")
    assert variable in result.stderr
