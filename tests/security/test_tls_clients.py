"""F7: every client of the gRPC server speaks TLS, with a CA, a client certificate and key, when the
server requires them: the callback shim, the dashboard, the CLI, ``pipelinejobs health`` (and so the
container's health check) and ``pipelinejobs up``'s own shim and dashboard.

A real gRPC server that speaks only TLS and requires client certificates (tests/pki.py makes the CA
and the certificates with openssl, as for tests/api/test_tls.py), on the real embedded database.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import grpc
import httpx
import pytest

from pipelinejobs_client import ClientTls, JobsClient
from pipelinejobs_client.cli import main
from pipelinejobs_server.shim import ShimSettings
from pipelinejobs_server.ui import DashboardSettings
from tests.pki import make_pki, mutual_tls_settings, tls_server
from tests.servers import DashboardThread, ServerThread, ShimThread, wait_for_line
from tests.shim.helpers import agave_params, http_client, new_job, state
from tests.support import CALLBACK_KEY_SECRET, CLIENT_KEY, ROOT


def client_tls(pki: Path, *, with_client_cert: bool = True, server_name: str = "") -> ClientTls:
    return ClientTls(
        ca_file=str(pki / "ca.pem"),
        cert_file=str(pki / "client.pem") if with_client_cert else "",
        key_file=str(pki / "client.key") if with_client_cert else "",
        server_name=server_name,
    )


def tls_environ(pki: Path) -> dict[str, str]:
    return {
        "PIPELINEJOBS_TLS_CA_FILE": str(pki / "ca.pem"),
        "PIPELINEJOBS_TLS_CLIENT_CERT_FILE": str(pki / "client.pem"),
        "PIPELINEJOBS_TLS_CLIENT_KEY_FILE": str(pki / "client.key"),
    }


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def mutual_tls(pki: Path, mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    yield from tls_server(mongodb_uri, database_name, mutual_tls_settings(pki))


@pytest.fixture
def reactor(mutual_tls: ServerThread, pki: Path) -> Iterator[JobsClient]:
    with JobsClient(mutual_tls.address, api_key=CLIENT_KEY, tls=client_tls(pki)) as jobs:
        yield jobs


def test_callbacks_relay_through_a_server_that_requires_client_certificates(
    mutual_tls: ServerThread, pki: Path, reactor: JobsClient
) -> None:
    """F7: against a TLS-only server every callback got 503: the shim could only speak plaintext."""
    pipeline = reactor.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    created = new_job(reactor, pipeline)
    settings = ShimSettings(
        server=mutual_tls.address, callback_key_secret=CALLBACK_KEY_SECRET, tls=client_tls(pki)
    )
    shim = ShimThread(settings).start()
    try:
        with http_client(shim.url) as http:
            assert http.get("/healthz").json() == {"ready": True, "server": "SERVING"}
            for status in ("RUNNING", "FINISHED"):
                answer = http.get("/v1/callbacks/agave", params=agave_params(created, status))
                assert answer.status_code == 200, answer.text
                assert answer.json()["outcome"] == "applied"
    finally:
        shim.stop()
    assert state(reactor, created.job.uuid) == "FINISHED"


def test_a_shim_without_the_client_certificate_or_with_the_wrong_name_is_not_ready(
    mutual_tls: ServerThread, pki: Path
) -> None:
    """F7: the certificate and the name checked are really used (a control for the test above)."""
    for tls in (client_tls(pki, with_client_cert=False), client_tls(pki, server_name="elsewhere.example")):
        settings = ShimSettings(server=mutual_tls.address, callback_key_secret=CALLBACK_KEY_SECRET, tls=tls)
        shim = ShimThread(replace(settings, health_timeout_s=2.0, call_timeout_s=2.0)).start()
        try:
            with http_client(shim.url) as http:
                answer = http.get("/healthz")
            assert answer.status_code == 503
            assert answer.json()["ready"] is False
        finally:
            shim.stop()


def test_the_dashboard_signs_in_and_reads_through_mutual_tls(
    mutual_tls: ServerThread, pki: Path, reactor: JobsClient
) -> None:
    """F7: the dashboard's gRPC clients (sign-in and pages) were plaintext only."""
    pipeline = reactor.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    created = new_job(reactor, pipeline)
    dashboard = DashboardThread(
        DashboardSettings(server=mutual_tls.address, tls=client_tls(pki, server_name="localhost"))
    ).start()
    try:
        with httpx.Client(base_url=dashboard.url, timeout=15) as session:
            answer = session.post("/ui/login", data={"api_key": CLIENT_KEY, "next": "/ui/"})
            assert answer.status_code == 303, answer.text
            page = session.get(f"/ui/jobs/{created.job.uuid}")
            assert page.status_code == 200, page.text
            assert created.job.uuid in page.text
    finally:
        dashboard.stop()


def test_the_cli_takes_a_ca_and_a_client_certificate_from_flags_or_the_environment(
    mutual_tls: ServerThread, pki: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """F7: the CLI had only ``--tls`` with the system's roots, and no client certificate."""
    flags = [
        "--tls-ca", str(pki / "ca.pem"),
        "--tls-client-cert", str(pki / "client.pem"),
        "--tls-client-key", str(pki / "client.key"),
    ]  # fmt: skip
    assert main(["fsm", "--json", "--server", mutual_tls.address, *flags], environ={}) == 0
    assert len(json.loads(capsys.readouterr().out)["states"]) == 11
    assert main(["fsm", "--json", "--server", mutual_tls.address], environ=tls_environ(pki)) == 0
    assert len(json.loads(capsys.readouterr().out)["states"]) == 11
    # Without the certificate the server refuses the connection: the CLI says the server is unavailable.
    assert (
        main(["fsm", "--server", mutual_tls.address, "--tls-ca", str(pki / "ca.pem"), "--timeout", "3"]) == 3
    )
    # Half a client certificate is a usage error, said before anything is sent.
    assert main(["fsm", "--server", mutual_tls.address, "--tls-client-cert", str(pki / "client.pem")]) == 2
    assert "--tls-client-key" in capsys.readouterr().err


def test_health_and_the_containers_health_check_work_against_mutual_tls(
    mutual_tls: ServerThread, pki: Path
) -> None:
    """F7: ``health --tls-ca`` failed once client certificates were required, and the Dockerfile's
    HEALTHCHECK was plaintext, so a TLS container was never healthy."""
    assert main(["health", "--server", mutual_tls.address], environ=tls_environ(pki)) == 0
    flags = ["--tls-ca", str(pki / "ca.pem"), "--tls-client-cert", str(pki / "client.pem")]
    assert (
        main(["health", "--server", mutual_tls.address, *flags, "--tls-client-key", str(pki / "client.key")])
        == 0
    )
    # Without the client certificate the handshake fails: no server answered, the exit code of every client
    # command for UNAVAILABLE (it was 1 before health told unreachable from not serving).
    assert main(["health", "--server", mutual_tls.address, "--tls-ca", str(pki / "ca.pem")], environ={}) == 3
    # The image's own check, as the Dockerfile writes it, with the container's environment.
    line = next(
        line
        for line in (ROOT / "Dockerfile").read_text().splitlines()
        if "CMD [" in line and "health" in line
    )
    command = json.loads(line.split("CMD", 1)[1])
    command = [mutual_tls.address if part == "127.0.0.1:50051" else part for part in command]
    assert command[:2] == ["pipelinejobs", "health"]
    result = subprocess.run(
        [sys.executable, "-m", "pipelinejobs_server", *command[1:]],
        capture_output=True,
        text=True,
        env={**os.environ, **tls_environ(pki)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "SERVING" in result.stdout


def up_arguments(tmp_path: Path, pki: Path) -> list[str]:
    return [
        "up", "--data-dir", str(tmp_path / "data"), "--grpc-port", "0", "--http-port", "0",
        "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"),
        "--tls-client-ca", str(pki / "ca.pem"), "--require-client-cert",
    ]  # fmt: skip


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    return env


@pytest.mark.slow
def test_up_with_mutual_tls_makes_its_own_shim_use_it(tmp_path: Path, pki: Path) -> None:
    """F7: `up`'s built-in shim and dashboard spoke plaintext to their own TLS server."""
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelinejobs_server", *up_arguments(tmp_path, pki)],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**clean_env(), **tls_environ(pki)},
        )
    try:
        wait_for_line(log, "press Ctrl-C to stop", process)
        text = log.read_text()
        grpc_port = re.search(r"gRPC server listening on 127\.0\.0\.1:(\d+) \(TLS\)", text).group(1)  # type: ignore[union-attr]
        url = re.search(r"callback shim listening on (http://\S+)", text).group(1)  # type: ignore[union-attr]
        key = (tmp_path / "data" / "client.key").read_text().strip()
        with (
            JobsClient(f"127.0.0.1:{grpc_port}", api_key=key, tls=client_tls(pki)) as jobs,
            http_client() as http,
        ):
            pipeline = jobs.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
            created = jobs.create_job(pipeline, lab="UW_BIOFAB", data={"tls": True})
            assert http.get(f"{url}/healthz").json() == {"ready": True, "server": "SERVING"}
            answer = http.get(created.callback_url.replace("${STATUS}", "RUNNING"))
            assert answer.status_code == 200, answer.text
            assert state(jobs, created.job.uuid) == "RUNNING"
            signed_in = http.post(f"{url}/ui/login", data={"api_key": key, "next": "/ui/"})
            assert signed_in.status_code == 303, signed_in.text
        process.terminate()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_up_requiring_client_certificates_refuses_to_start_without_one_for_its_own_apps(
    tmp_path: Path, pki: Path
) -> None:
    """F7: its shim would answer every callback 503; `up` says what to set instead of starting."""
    result = subprocess.run(
        [sys.executable, "-m", "pipelinejobs_server", *up_arguments(tmp_path, pki)],
        capture_output=True,
        text=True,
        env={**clean_env(), "PIPELINEJOBS_TLS_CA_FILE": str(pki / "ca.pem")},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "PIPELINEJOBS_TLS_CLIENT_CERT_FILE" in result.stderr


@pytest.mark.slow
def test_up_with_tls_fails_fast_when_its_own_apps_cannot_verify_the_server(tmp_path: Path, pki: Path) -> None:
    """F7: a shim that cannot verify the server answers every callback 503; `up` refuses to run so."""
    env = {**clean_env(), **tls_environ(pki)}
    env.pop("PIPELINEJOBS_TLS_CA_FILE")  # the system's roots do not know the test CA
    result = subprocess.run(
        [sys.executable, "-m", "pipelinejobs_server", *up_arguments(tmp_path, pki)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "PIPELINEJOBS_TLS_CA_FILE" in result.stderr


def test_client_tls_settings_are_checked(pki: Path) -> None:
    """F7: half-configured client TLS is refused with what is missing, not a failure on first use."""
    assert ClientTls.from_environ({}) is None
    assert ClientTls.from_environ({"PIPELINEJOBS_TLS": "1"}) == ClientTls()
    assert ClientTls.from_environ(tls_environ(pki)) == client_tls(pki)
    for broken in (
        {"PIPELINEJOBS_TLS_CLIENT_CERT_FILE": str(pki / "client.pem")},
        {"PIPELINEJOBS_TLS_CLIENT_KEY_FILE": str(pki / "client.key")},
        {"PIPELINEJOBS_TLS_CA_FILE": str(pki / "missing.pem")},
    ):
        with pytest.raises(ValueError, match="PIPELINEJOBS_TLS_"):
            ClientTls.from_environ(broken)
    assert isinstance(client_tls(pki).credentials(), grpc.ChannelCredentials)
