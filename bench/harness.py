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


@dataclass
class ServerProcess:
    """One ``pipelinejobs_server serve`` bound to a port of its own choosing."""

    database: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

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
class Environment:
    """``with Environment() as env``: a database at ``env.uri``; ``env.start_server(name)`` per database."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="pipelinejobs-bench-")))
    # Keys of this run only: nothing here is a default secret.
    client_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    servers: list[ServerProcess] = field(default_factory=list)
    _database: EmbeddedDatabase | None = None

    @property
    def uri(self) -> str:
        assert self._database is not None, "the environment is not started"
        return self._database.uri

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

    def start_server(self, database: str, timeout_s: float = 60.0) -> ServerProcess:
        env = dict(os.environ)
        env.update(
            {
                "MONGODB_URI": self.uri,
                "PIPELINEJOBS_DATABASE": database,
                "PIPELINEJOBS_ADMIN_KEY": self.admin_key,
                "PIPELINEJOBS_CLIENT_KEYS": self.client_key,
                "PIPELINEJOBS_LOG_LEVEL": "WARNING",
                "PYTHONUNBUFFERED": "1",
            }
        )
        log_path = self.root / f"serve-{database}.log"
        with log_path.open("wb") as log:
            # A session of its own: a Ctrl-C at the terminal reaches only us, and we stop it in order.
            process = subprocess.Popen(
                [sys.executable, "-m", "pipelinejobs_server", "serve", "--grpc-port", "0"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        server = ServerProcess(database, process, 0, log_path)
        self.servers.append(server)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = _LISTENING.search(log_path.read_text(errors="replace"))
            if match:
                server.port = int(match.group(1))
                return server
            if process.poll() is not None:
                break
            time.sleep(0.05)
        server.stop()
        raise RuntimeError(f"server for {database!r} did not start:\n{log_path.read_text(errors='replace')}")

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
