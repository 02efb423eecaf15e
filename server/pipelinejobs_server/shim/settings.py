"""The shim's settings, read from an injectable mapping (the process environment by default).

They live here, not in the server's Settings: the shim is a separate program (it may run on another
machine than the server) and the server never needs any of them. The callback nonce in particular is
checked only at the HTTP edge; the server knows nothing about it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from pipelinejobs_server.settings import SettingsError

DEFAULT_MAX_BODY_BYTES = 1024 * 1024


def _int(environ: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None
    if not minimum <= value <= maximum:
        raise SettingsError(f"{name} must be between {minimum} and {maximum}, got {value}")
    return value


def _float(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name, "")
    if raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value <= 600:
        raise SettingsError(f"{name} must be between 0 and 600 seconds, got {value}")
    return value


@dataclass(frozen=True)
class ShimSettings:
    server: str = "127.0.0.1:50051"
    """The gRPC server, host:port."""
    host: str = "127.0.0.1"
    port: int = 8080
    api_key: str = ""
    """Optional client API key sent with every call. Never an admin key (see relay.KeyGuard)."""
    callback_nonce: str = ""
    """When set, executor callbacks must carry it (``x-nonce`` query parameter or header)."""
    ui_api_key: str = ""
    """Optional client API key the dashboard (/ui/) reads with, for everyone who reaches it; without one,
    each user signs in with their own key. Never an admin key (see ui/access.py)."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    call_timeout_s: float = 5.0
    health_timeout_s: float = 2.0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> ShimSettings:
        env = os.environ if environ is None else environ
        defaults = cls()
        settings = cls(
            server=env.get("PIPELINEJOBS_SERVER", "") or defaults.server,
            host=env.get("PIPELINEJOBS_HTTP_HOST", "") or defaults.host,
            port=_int(env, "PIPELINEJOBS_HTTP_PORT", defaults.port, 0, 65535),
            # Not PIPELINEJOBS_API_KEY: that is the client tools' key, often an admin one, which the
            # shim must never hold (relay.KeyGuard); the shim's key is configured on purpose or not at all.
            api_key=env.get("PIPELINEJOBS_SHIM_API_KEY", "").strip(),
            callback_nonce=env.get("PIPELINEJOBS_CALLBACK_NONCE", "").strip(),
            ui_api_key=env.get("PIPELINEJOBS_UI_API_KEY", "").strip(),
            max_body_bytes=_int(
                env, "PIPELINEJOBS_MAX_CALLBACK_BYTES", defaults.max_body_bytes, 1, 64 * 1024 * 1024
            ),
            call_timeout_s=_float(env, "PIPELINEJOBS_SHIM_CALL_TIMEOUT_S", defaults.call_timeout_s),
        )
        settings.validate()
        return settings

    def validate(self) -> None:
        host, _, port = self.server.rpartition(":")
        if not host or not port.isdigit():
            raise SettingsError(f"the gRPC server must be host:port, got {self.server!r}")
        if not 0 <= self.port <= 65535:
            raise SettingsError(f"the HTTP port must be between 0 and 65535, got {self.port}")
