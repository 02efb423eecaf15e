"""The shim's settings, read from an injectable mapping (the process environment by default).

They live here, not in the server's Settings: the shim is a separate program (it may run on another
machine than the server) and the server never needs any of them. The callback nonce in particular is
checked only at the HTTP edge; the server knows nothing about it, nor about the secret the shim keys
its callbacks' idempotency keys with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from pipelinejobs_client import ClientTls
from pipelinejobs_server.settings import SettingsError, read_int, read_seconds
from pipelinejobs_server.web.connections import ConnectionLimits

DEFAULT_MAX_BODY_BYTES = 1024 * 1024
CALLBACK_KEY_SECRET_ENV = "PIPELINEJOBS_CALLBACK_KEY_SECRET"  # noqa: S105 - the variable's name
# 32 characters: 128 bits even as hex (`openssl rand -hex 32` gives 64); `up` generates 43 (256 bits).
MIN_SECRET_LENGTH = 32


def _client_tls(environ: Mapping[str, str]) -> ClientTls | None:
    try:
        return ClientTls.from_environ(environ)
    except ValueError as error:
        raise SettingsError(str(error)) from None


@dataclass(frozen=True)
class ShimSettings:
    server: str = "127.0.0.1:50051"
    """The gRPC server, host:port."""
    tls: ClientTls | None = None
    """TLS to the gRPC server (a CA, a client certificate and key, the name to check); None: plaintext.
    From ``PIPELINEJOBS_TLS_*`` (pipelinejobs_client/tls.py), as for every client."""
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str = ""
    """Optional client API key sent with every call. Never an admin key (see relay.KeyGuard)."""
    callback_nonce: str = ""
    """When set, executor callbacks must carry it (``x-nonce`` query parameter or header)."""
    callback_key_secret: str = field(default="", repr=False)
    """The HMAC key of callback idempotency keys (body.callback_key); required, the same on every replica."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    call_timeout_s: float = 5.0
    health_timeout_s: float = 2.0
    connections: ConnectionLimits = field(default_factory=ConnectionLimits)
    """Deadlines and the cap on the HTTP connections (under ``up``: of the port it shares)."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ShimSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        settings = cls(
            server=env.get("PIPELINEJOBS_SERVER", "") or defaults.server,
            tls=_client_tls(env),
            host=env.get("PIPELINEJOBS_HTTP_HOST", "") or defaults.host,
            port=read_int(env, "PIPELINEJOBS_HTTP_PORT", defaults.port, 0, 65535),
            # Not PIPELINEJOBS_API_KEY: that is the client tools' key, often an admin one, which the
            # shim must never hold (relay.KeyGuard); the shim's key is configured on purpose or not at all.
            api_key=env.get("PIPELINEJOBS_SHIM_API_KEY", "").strip(),
            callback_nonce=env.get("PIPELINEJOBS_CALLBACK_NONCE", "").strip(),
            callback_key_secret=env.get(CALLBACK_KEY_SECRET_ENV, "").strip(),
            max_body_bytes=read_int(
                env, "PIPELINEJOBS_MAX_CALLBACK_BYTES", defaults.max_body_bytes, 1, 64 * 1024 * 1024
            ),
            call_timeout_s=read_seconds(env, "PIPELINEJOBS_SHIM_CALL_TIMEOUT_S", defaults.call_timeout_s),
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
        if len(self.callback_key_secret) < MIN_SECRET_LENGTH:
            given = f" (it has {len(self.callback_key_secret)})" if self.callback_key_secret else ""
            raise SettingsError(
                f"set {CALLBACK_KEY_SECRET_ENV} to a random secret of at least {MIN_SECRET_LENGTH} "
                f"characters{given}, the same on every shim replica (e.g. `openssl rand -hex 32`): "
                "callback idempotency keys are HMACs with it"
            )
