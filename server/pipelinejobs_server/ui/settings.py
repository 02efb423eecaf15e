"""The dashboard's settings, read from an injectable mapping (the process environment by default).

The dashboard is its own app (it may run apart from the public callback endpoint, on an internal
network): it needs only the gRPC server's address and, optionally, one client key for everyone.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipelinejobs_client import ClientTls
from pipelinejobs_server.settings import SettingsError, read_int, read_seconds
from pipelinejobs_server.web.connections import ConnectionLimits

TRUE = ("1", "true", "yes")
DEFAULT_PORT = 8081  # beside the shim's 8080 when the two run apart; under `up` they share the shim's port


def _client_tls(environ: Mapping[str, str]) -> ClientTls | None:
    try:
        return ClientTls.from_environ(environ)
    except ValueError as error:
        raise SettingsError(str(error)) from None


@dataclass(frozen=True)
class DashboardSettings:
    server: str = "127.0.0.1:50051"
    """The gRPC server, host:port."""
    tls: ClientTls | None = None
    """TLS to the gRPC server (a CA, a client certificate and key, the name to check); None: plaintext.
    From ``PIPELINEJOBS_TLS_*`` (pipelinejobs_client/tls.py), as for every client."""
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    """Where ``pipelinejobs dashboard`` listens (under ``up``, the dashboard shares the shim's port)."""
    api_key: str = ""
    """Optional client API key the dashboard reads with, for everyone who reaches it; without one,
    each user signs in with their own key. Never an admin key (see access.py)."""
    call_timeout_s: float = 5.0
    secure_cookie: bool = False
    """Send the sign-in cookie ``Secure`` always, not only when the request arrived over HTTPS: behind a
    TLS-terminating proxy the dashboard itself is reached over plain HTTP."""
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    """Deadlines and the cap on the HTTP connections of ``pipelinejobs dashboard`` (under ``up``, the
    shim's settings, from the same variables, govern the port they share)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> DashboardSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        settings = cls(
            server=env.get("PIPELINEJOBS_SERVER", "") or defaults.server,
            tls=_client_tls(env),
            host=env.get("PIPELINEJOBS_UI_HOST", "") or defaults.host,
            port=read_int(env, "PIPELINEJOBS_UI_PORT", defaults.port, 0, 65535),
            api_key=env.get("PIPELINEJOBS_UI_API_KEY", "").strip(),
            call_timeout_s=read_seconds(env, "PIPELINEJOBS_UI_CALL_TIMEOUT_S", defaults.call_timeout_s),
            secure_cookie=env.get("PIPELINEJOBS_UI_SECURE_COOKIE", "").strip().lower() in TRUE,
            connections=ConnectionLimits.from_environ(env),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.tls is not None:
            try:
                self.tls.check()
            except ValueError as error:
                raise SettingsError(str(error)) from None
        host, _, port = self.server.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"the gRPC server must be host:port, got {self.server!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"the HTTP port must be between 0 and 65535, got {self.port}")
