"""Certificates for TLS tests, made with the openssl command: a private CA, a server certificate for
127.0.0.1 and localhost, and a client certificate; and a gRPC server that uses them."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from pipelinejobs_server.settings import Tls
from tests.servers import ServerThread, test_settings


def openssl(*arguments: str, cwd: Path) -> None:
    subprocess.run(["openssl", *arguments], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(folder: Path) -> Path:
    """ca.pem/ca.key, server.pem/server.key and client.pem/client.key in ``folder``."""
    if shutil.which("openssl") is None:
        pytest.fail("the openssl command is needed to make test certificates")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
            "-days", "2", "-subj", "/CN=PipelineJobs test CA", cwd=folder)  # fmt: skip
    for name, extension in (
        ("server", "subjectAltName=IP:127.0.0.1,DNS:localhost"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                "-subj", f"/CN={name}", cwd=folder)  # fmt: skip
        (folder / f"{name}.ext").write_text(extension + "\n")
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=folder)  # fmt: skip
    return folder


def tls_server(mongodb_uri: str, database: str, tls: Tls) -> Iterator[ServerThread]:
    server = ServerThread(replace(test_settings(mongodb_uri, database), tls=tls)).start()
    yield server
    server.stop()


def mutual_tls_settings(pki: Path) -> Tls:
    """TLS only, and a client certificate signed by the test CA required."""
    return Tls(
        str(pki / "server.pem"), str(pki / "server.key"), str(pki / "ca.pem"), require_client_cert=True
    )
