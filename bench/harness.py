"""The processes a benchmark run needs: one embedded database and ``serve`` processes, in one temp dir.

Servers run as separate processes (``python -m pipelinejobs_server serve``), as in production: a server
thread inside this process would share its interpreter lock with the client threads that measure it.
Everything started here is stopped, and the temp dir removed, when the ``with`` block ends for any reason.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from pipelinejobs_server.storage.embedded import EmbeddedDatabase

_LISTENING = re.compile(r"listening on [\d.]+:(\d+)")
_SHIM_LISTENING = re.compile(r"callback shim listening on http://[\d.]+:(\d+)")


@dataclass
class Child:
    """A process started here, in a session of its own, with its output in ``log_path``."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class ServerProcess(Child):
    """One ``pipelinejobs_server serve`` bound to a port of its own choosing."""

    database: str = ""

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass
class ShimProcess(Child):
    """One ``pipelinejobs_server shim`` in front of a server, on a port of its own choosing."""


@dataclass
class Environment:
    """``with Environment() as env``: a database at ``env.uri``; ``env.start_server(name)`` per database."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pipelinejobs-bench-")))
    # Keys of this run only: nothing here is a default secret.
    client_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    servers: list[Child] = field(default_factory=list)
    _database: EmbeddedDatabase | None = None

    @property
    def uri(self) -> str:
        assert self._database is not None, "the environment is not started"
        return self._database.uri

    @property
    def shown_uri(self) -> str:
        """The database URI without its password, for printing."""
        assert self._database is not None, "the environment is not started"
        return self._database.shown_uri

    @property
    def database_pid(self) -> int | None:
        process = None if self._database is None else self._database.process
        return None if process is None else process.pid

    def __enter__(self) -> Environment:
        try:
            self._database = EmbeddedDatabase(self.root / "secantus")
            self._database.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def _environ(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            {
                "MONGODB_URI": self.uri,
                "PIPELINEJOBS_ADMIN_KEY": self.admin_key,
                "PIPELINEJOBS_CLIENT_KEYS": self.client_key,
                "PIPELINEJOBS_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def _spawn(
        self,
        name: str,
        arguments: list[str],
        env: dict[str, str],
        listening: re.Pattern[str],
        timeout_s: float,
    ) -> tuple[subprocess.Popen[bytes], int, Path]:
        """Start a child and wait until its log says which port it listens on."""
        log_path = self.root / f"{name}.log"
        with log_path.open("wb") as log:
            # A session of its own: a Ctrl-C at the terminal reaches only us, and we stop it in order.
            process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
                [sys.executable, *arguments],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = listening.search(log_path.read_text(errors="replace"))
            if match:
                return process, int(match.group(1)), log_path
            if process.poll() is not None:
                break
            time.sleep(0.05)
        Child(process, 0, log_path).stop()
        raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')}")

    def start_server(
        self,
        database: str,
        timeout_s: float = 60.0,
        *,
        profile_to: Path | None = None,
        settings: dict[str, str] | None = None,
    ) -> ServerProcess:
        """A server on ``database`` (it creates its indexes before it listens, hence the timeout).

        With ``profile_to``, it runs under cProfile and writes its statistics there when stopped.
        ``settings`` are more environment variables for it.
        """
        env = self._environ()
        env["PIPELINEJOBS_DATABASE"] = database
        env.update(settings or {})
        profiler = [] if profile_to is None else ["-m", "cProfile", "-o", str(profile_to)]
        arguments = [*profiler, "-m", "pipelinejobs_server", "serve", "--grpc-port", "0"]
        process, port, log_path = self._spawn(f"serve-{database}", arguments, env, _LISTENING, timeout_s)
        server = ServerProcess(process, port, log_path, database)
        self.servers.append(server)
        return server

    def start_shim(self, server: ServerProcess, timeout_s: float = 60.0) -> ShimProcess:
        """The HTTP callback shim in front of ``server``, with no API key (job tokens authorize)."""
        arguments = ["-m", "pipelinejobs_server", "shim", "--server", server.address, "--port", "0"]
        # A secret of this run's own: the shim makes each callback's idempotency key an HMAC with it.
        env = {**self._environ(), "PIPELINEJOBS_CALLBACK_KEY_SECRET": secrets.token_hex(32)}
        process, port, log_path = self._spawn(
            f"shim-{server.database}", arguments, env, _SHIM_LISTENING, timeout_s
        )
        shim = ShimProcess(process, port, log_path)
        self.servers.append(shim)
        return shim

    def close(self) -> None:
        # Each step runs even if the one before it fails or is interrupted again.
        try:
            for server in reversed(self.servers):
                with contextlib.suppress(Exception):
                    server.stop()
            self.servers.clear()
        finally:
            try:
                if self._database is not None:
                    self._database.stop()
                    self._database = None
            finally:
                shutil.rmtree(self.root, ignore_errors=True)
