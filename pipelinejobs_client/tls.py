"""TLS for a client's channel from files: the CA to trust, a client certificate to present, the name to check.

One description for every client of the server: the CLI (``--tls-ca``, ``--tls-client-cert``,
``--tls-client-key``, ``--tls-server-name``), ``pipelinejobs health``, the callback shim and the
dashboard, all of which also read the same environment variables (so a container's health check works
with the container's environment). Pass a ``ClientTls`` as ``tls=`` to either client.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import grpc

TLS_ENV: Final = "PIPELINEJOBS_TLS"
CA_ENV: Final = "PIPELINEJOBS_TLS_CA_FILE"
CERT_ENV: Final = "PIPELINEJOBS_TLS_CLIENT_CERT_FILE"
KEY_ENV: Final = "PIPELINEJOBS_TLS_CLIENT_KEY_FILE"
SERVER_NAME_ENV: Final = "PIPELINEJOBS_TLS_SERVER_NAME"
_TRUE: Final = frozenset({"1", "true", "yes", "on"})


@dataclass(frozen=True)
class ClientTls:
    """A TLS channel's settings; every field may be empty.

    ``ca_file`` is the PEM bundle of the CA(s) that sign the server's certificate (empty: the system's
    roots). ``cert_file`` and ``key_file``, given together, are the certificate chain and private key
    presented to a server that asks for client certificates. ``server_name`` is the name the server's
    certificate must carry when it is not the host connected to (a server reached by its IP address,
    or ``up``'s own apps reaching it at its listen address).
    """

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""
    server_name: str = ""

    @classmethod
    def from_environ(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        tls: bool = False,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        server_name: str | None = None,
    ) -> ClientTls | None:
        """The variables' settings, each under the flag of the same meaning when one is given (not
        None); None (plaintext) when nothing is set and neither ``tls`` nor ``PIPELINEJOBS_TLS`` asks
        for TLS. Raises ValueError for what ``check`` refuses."""
        env = os.environ if environ is None else environ

        def pick(flag: str | None, variable: str) -> str:
            return (flag if flag is not None else env.get(variable, "")).strip()

        settings = cls(
            ca_file=pick(ca_file, CA_ENV),
            cert_file=pick(cert_file, CERT_ENV),
            key_file=pick(key_file, KEY_ENV),
            server_name=pick(server_name, SERVER_NAME_ENV),
        )
        if settings == cls() and not tls and env.get(TLS_ENV, "").strip().lower() not in _TRUE:
            return None
        settings.check()
        return settings

    def check(self) -> None:
        """Raise ValueError, naming the setting, for half a client certificate or a file that is not there."""
        if bool(self.cert_file) != bool(self.key_file):
            raise ValueError(
                f"a client certificate needs both its certificate and its key ({CERT_ENV} and {KEY_ENV}, "
                "or --tls-client-cert and --tls-client-key)"
            )
        for variable, path in ((CA_ENV, self.ca_file), (CERT_ENV, self.cert_file), (KEY_ENV, self.key_file)):
            if path and not os.access(path, os.R_OK):
                raise ValueError(f"TLS file not found or not readable: {path} ({variable})")

    def credentials(self) -> grpc.ChannelCredentials:
        """The channel credentials; reads the files (OSError if they went away since ``check``)."""

        def read(path: str) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(
            root_certificates=read(self.ca_file),
            private_key=read(self.key_file),
            certificate_chain=read(self.cert_file),
        )

    def options(self) -> tuple[tuple[str, str], ...]:
        """Channel options: the name the server's certificate is checked against, when one is set."""
        return (("grpc.ssl_target_name_override", self.server_name),) if self.server_name else ()
