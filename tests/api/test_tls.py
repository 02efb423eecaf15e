"""Optional TLS on the gRPC port: server certificates, and client certificates verified or required.

Certificates are made for the test with the openssl command (tests/pki.py: a private CA, a server
certificate for 127.0.0.1 and a client certificate).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from pipelinejobs_client import JobsClient, ServiceUnavailable
from pipelinejobs_client.retry import RetryPolicy
from pipelinejobs_server.settings import Tls
from tests.pki import make_pki, mutual_tls_settings, tls_server
from tests.servers import ServerThread
from tests.support import CLIENT_KEY

ONE_TRY = RetryPolicy(attempts=1)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server_tls(pki: Path, mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    yield from tls_server(mongodb_uri, database_name, Tls(str(pki / "server.pem"), str(pki / "server.key")))


@pytest.fixture
def mutual_tls(pki: Path, mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    yield from tls_server(mongodb_uri, database_name, mutual_tls_settings(pki))


def trusting(pki: Path, *, with_client_cert: bool = False) -> grpc.ChannelCredentials:
    if with_client_cert:
        return grpc.ssl_channel_credentials(
            root_certificates=(pki / "ca.pem").read_bytes(),
            private_key=(pki / "client.key").read_bytes(),
            certificate_chain=(pki / "client.pem").read_bytes(),
        )
    return grpc.ssl_channel_credentials(root_certificates=(pki / "ca.pem").read_bytes())


def test_a_tls_server_serves_clients_that_trust_its_ca(server_tls: ServerThread, pki: Path) -> None:
    with JobsClient(server_tls.address, api_key=CLIENT_KEY, tls=trusting(pki), retry=ONE_TRY) as client:
        assert len(client.get_state_machine().states) == 11
        assert client.register_pipeline("tls", ["tls@1"]).created
    plaintext = JobsClient(server_tls.address, api_key=CLIENT_KEY, retry=ONE_TRY, timeout=3)
    with plaintext, pytest.raises(ServiceUnavailable):
        plaintext.get_state_machine()


def test_required_client_certificates_are_enforced(mutual_tls: ServerThread, pki: Path) -> None:
    credentials = trusting(pki, with_client_cert=True)
    with JobsClient(mutual_tls.address, api_key=CLIENT_KEY, tls=credentials, retry=ONE_TRY) as client:
        assert len(client.get_state_machine().events) == 15
    with (
        JobsClient(
            mutual_tls.address, api_key=CLIENT_KEY, tls=trusting(pki), retry=ONE_TRY, timeout=3
        ) as bare,
        pytest.raises(ServiceUnavailable),
    ):
        bare.get_state_machine()


def test_health_command_checks_a_tls_server(server_tls: ServerThread, pki: Path) -> None:
    from pipelinejobs_client.cli import main

    assert main(["health", "--server", server_tls.address, "--tls-ca", str(pki / "ca.pem")]) == 0
