"""What bounds the HTTP side's connections: deadlines for each request's head and body, an idle
timeout, a cap on open connections, and a file-descriptor budget.

uvicorn has a keep-alive timeout, but it runs only between a response and the next request and every
byte received cancels it, so a client that sends nothing, or one header line every few seconds, holds
its connection (a file descriptor) for ever; and ``limit_concurrency`` answers 503 to requests over the
limit but keeps accepting connections. ``GuardedH11Protocol`` is uvicorn's h11 protocol with what it
lacks: an absolute deadline from the moment a connection is ready for a request (it opened, or the
previous response went out) until the request's head is complete, another for its body, and a
connection over the cap closed at once with a 503. uvicorn's own keep-alive timeout stays the idle one.

Under ``pipelinejobs up`` the HTTP apps share one process, so one table of file descriptors, with the
gRPC server and the database driver: ``budgeted`` raises the soft limit to the hard one and keeps the
HTTP cap at half of what is left, so connections piling up on the HTTP port cannot starve the rest.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipelinejobs_server.settings import SettingsError, read_int, read_seconds

log = logging.getLogger("pipelinejobs.http")

# Enough for any file descriptors beyond the HTTP connections: the gRPC server's, the driver's pool, logs.
FD_SHARE_FOR_HTTP = 2  # the HTTP cap is at most 1/2 of the soft limit
FALLBACK_FD_LIMIT = 65536  # when the hard limit is unlimited, which Linux does not allow as a soft limit
WARN_EVERY_S = 60.0
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 29\r\nretry-after: 5\r\nconnection: close\r\n\r\ntoo many connections; retry\r\n"
)


@dataclass(frozen=True)
class ConnectionLimits:
    """How long a client may take and how many may be connected (docs/operations.md, "HTTP limits")."""

    head_timeout_s: float = 10.0
    """From a connection being ready for a request (just opened, or its last response sent) until the
    request's head (request line and headers) is complete, however the bytes trickle in."""
    body_timeout_s: float = 30.0
    """From a complete head until the whole body has arrived (the shim reads at most 1 MiB)."""
    idle_timeout_s: int = 5
    """How long a kept-alive connection may stay silent after a response (uvicorn's keep-alive timeout,
    whole seconds)."""
    max_connections: int = 1000
    """Open connections at most; one more is answered 503 and closed at once."""

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> ConnectionLimits:
        defaults = cls()
        limits = cls(
            head_timeout_s=read_seconds(environ, "PIPELINEJOBS_HTTP_HEAD_TIMEOUT_S", defaults.head_timeout_s),
            body_timeout_s=read_seconds(environ, "PIPELINEJOBS_HTTP_BODY_TIMEOUT_S", defaults.body_timeout_s),
            idle_timeout_s=read_int(
                environ, "PIPELINEJOBS_HTTP_IDLE_TIMEOUT_S", defaults.idle_timeout_s, 1, 600
            ),
            max_connections=read_int(
                environ, "PIPELINEJOBS_HTTP_MAX_CONNECTIONS", defaults.max_connections, 1
            ),
        )
        limits.validate()
        return limits

    def validate(self) -> None:
        if not (self.head_timeout_s > 0 and self.body_timeout_s > 0 and self.idle_timeout_s >= 1):
            raise SettingsError("the HTTP timeouts must be positive (the idle one at least 1 s)")
        if self.max_connections < 1:
            raise SettingsError(f"the HTTP connection limit must be at least 1, got {self.max_connections}")


def raise_fd_limit() -> int:
    """Raise this process's soft limit of open files to its hard limit; the soft limit it ends with."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = FALLBACK_FD_LIMIT if hard == resource.RLIM_INFINITY else hard
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as error:  # a container may forbid it; keep what we have
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, error)
    return FALLBACK_FD_LIMIT if soft == resource.RLIM_INFINITY else soft


def budgeted(limits: ConnectionLimits) -> ConnectionLimits:
    """``limits`` with the connection cap at most half the (raised) open-file limit of this process."""
    share = max(1, raise_fd_limit() // FD_SHARE_FOR_HTTP)
    if limits.max_connections <= share:
        return limits
    log.warning(
        "HTTP connections capped at %d, not %d: this process may open only %d files, and gRPC and the "
        "database driver need theirs (raise `ulimit -n`)",
        share,
        limits.max_connections,
        share * FD_SHARE_FOR_HTTP,
    )
    return replace(limits, max_connections=share)


LISTEN_BACKLOG = 2048  # connections the kernel may queue for us: they cost no descriptor of ours


def accept_batch(limits: ConnectionLimits) -> int:
    """How many connections asyncio accepts in one go (it takes the server's backlog for that).

    A connection over the cap is refused only once its protocol runs, after the whole batch has been
    accepted, and one batch can be accepted before the previous one is closed: so the descriptors in
    use can pass the cap by up to two batches. A quarter of the cap keeps that within the file budget
    (``budgeted``: the cap is at most half of it), where uvicorn's 2048 would not. The kernel's own
    queue is set back to ``LISTEN_BACKLOG`` once the server listens (serving.py), so a burst of clients
    waits there instead of having its connection attempts dropped.
    """
    return max(8, min(LISTEN_BACKLOG, limits.max_connections // 4))


class GuardedConfig(uvicorn.Config):
    """uvicorn's config, carrying the limits to each connection's protocol."""

    def __init__(self, app: Any, limits: ConnectionLimits, **options: Any) -> None:
        super().__init__(
            app,
            http=GuardedH11Protocol,
            timeout_keep_alive=limits.idle_timeout_s,
            backlog=accept_batch(limits),
            **options,
        )
        self.connection_limits = limits


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head and body and a connection cap."""

    _last_warning: ClassVar[float] = 0.0

    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        limits = getattr(config, "connection_limits", None)
        self.limits = limits if isinstance(limits, ConnectionLimits) else ConnectionLimits()
        self._deadline: asyncio.TimerHandle | None = None
        self._phase = ""  # "head", "body", or "" while the app answers (no deadline then)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse()
            return
        self._follow()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        self._follow()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._follow()  # the next request's head has its own deadline, whatever trickles in

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _follow(self) -> None:
        """Arm the deadline of the phase the client is in, once, when it enters it."""
        if self.transport.is_closing():
            self._disarm()
            return
        state = self.conn.their_state
        phase = "head" if state is h11.IDLE else "body" if state is h11.SEND_BODY else ""
        if phase == self._phase:
            return
        self._disarm()
        self._phase = phase
        if phase:
            timeout = self.limits.head_timeout_s if phase == "head" else self.limits.body_timeout_s
            self._deadline = self.loop.call_later(timeout, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.debug("closing an HTTP connection: its request %s took too long", self._phase)
        # abort, not close: a client that does not read would keep a close waiting on its buffer.
        self.transport.abort()

    def _refuse(self) -> None:
        now = time.monotonic()
        if now - GuardedH11Protocol._last_warning > WARN_EVERY_S:
            GuardedH11Protocol._last_warning = now
            log.warning(
                "HTTP connection limit (%d) reached: refusing connections", self.limits.max_connections
            )
        self.transport.write(_BUSY)
        self.transport.close()
