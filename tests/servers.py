"""Servers for the tests: the gRPC server, the callback shim and the dashboard on background threads in
this process, and ``pipelinejobs serve`` in processes of its own (for replicas, kills and restarts)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Coroutine, Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from starlette.types import ASGIApp

from pipelinejobs_server import shim, ui
from pipelinejobs_server.app import STOP_MARGIN_S, RunningServer, start_server
from pipelinejobs_server.domain.clock import SYSTEM_CLOCK, Clock
from pipelinejobs_server.settings import Feed, Settings
from pipelinejobs_server.stopping import settle_tasks
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.web.connections import ConnectionLimits
from pipelinejobs_server.web.mounting import mounted
from pipelinejobs_server.web.serving import RunningApp, bind, start_app
from tests.support import ADMIN_KEY, CLIENT_KEY, Stubs, stubs


def test_settings(uri: str, database: str, **changes: Any) -> Settings:
    settings = Settings(
        mongodb_uri=uri,
        database=database,
        host="127.0.0.1",
        port=0,
        admin_keys=(ADMIN_KEY,),
        client_keys=(CLIENT_KEY,),
        health_interval_s=0.2,
        feed=Feed(bookmark_s=1.0),
    )
    return replace(settings, **changes)


# Imported into test modules: keep pytest from collecting it as a test.
test_settings.__test__ = False  # type: ignore[attr-defined]


class _Stoppable(Protocol):
    async def stop(self, grace_s: float) -> None: ...


Running = TypeVar("Running", bound=_Stoppable)
Result = TypeVar("Result")


class _LoopThread(Generic[Running]):
    """An asyncio event loop of its own in a daemon thread, running one server beside blocking tests."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.running: Running | None = None

    def _on_loop(self, coroutine: Coroutine[Any, Any, Result], timeout_s: float) -> Result:
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout=timeout_s)

    def _start(self, coroutine: Coroutine[Any, Any, Running], timeout_s: float) -> None:
        self._thread.start()
        self.running = self._on_loop(coroutine, timeout_s)

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def stop(self, grace_s: float = 1.0) -> float:
        """The server's own stop, as SIGTERM does it, then ``close``; returns how long the stop took."""
        took = 0.0
        if self.running is not None:
            started = time.monotonic()
            # The stop bounds itself (grace_s + its margin); the timeout here only keeps a broken stop
            # from hanging the whole run, with a clear error.
            self._on_loop(self.running.stop(grace_s), grace_s + STOP_MARGIN_S + 30)
            took = time.monotonic() - started
        self.close()
        return took

    def close(self) -> None:
        """After the stop: cancel what is left on the loop (bounded, as the CLI does), end loop and thread.

        A loop whose thread does not end (a stop that never returned) is left to its daemon thread.
        """
        if self._loop.is_closed():
            return
        if self._thread.is_alive():
            with contextlib.suppress(TimeoutError):
                self._on_loop(settle_tasks(1.0), 10)
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=30)
        if not self._thread.is_alive():
            self._loop.close()


class ServerThread(_LoopThread[RunningServer]):
    """A real gRPC server on 127.0.0.1 with its own event loop, in a daemon thread."""

    def __init__(self, settings: Settings, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self._settings = settings
        self._clock = clock

    def start(self) -> ServerThread:
        self._start(start_server(self._settings, clock=self._clock), 60)
        return self

    @property
    def address(self) -> str:
        assert self.running is not None
        return f"127.0.0.1:{self.running.port}"


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[Stubs]:
    """Stubs of a server started for the block and stopped after it (a test that restarts its server)."""
    server = ServerThread(settings).start()
    try:
        with stubs(server.address) as api:
            yield api
    finally:
        server.stop()


class _AppThread(_LoopThread[RunningApp]):
    """An HTTP app served by uvicorn on 127.0.0.1:<free port>, on its own event loop in a daemon thread."""

    def __init__(self, sock: socket.socket | None = None) -> None:
        super().__init__()
        self._sock = sock

    def _app(self) -> ASGIApp:
        raise NotImplementedError

    def _limits(self) -> ConnectionLimits:
        raise NotImplementedError

    def _serve(self) -> None:
        self._start(start_app(self._app(), self._sock or bind("127.0.0.1", 0), "http", self._limits()), 30)

    @property
    def url(self) -> str:
        assert self.running is not None
        return self.running.url


class ShimThread(_AppThread):
    """The callback shim alone, as ``pipelinejobs shim`` serves it."""

    def __init__(self, settings: shim.ShimSettings, sock: socket.socket | None = None) -> None:
        super().__init__(sock)
        self.settings = settings

    def _app(self) -> ASGIApp:
        return shim.create_app(self.settings)

    def _limits(self) -> ConnectionLimits:
        return self.settings.connections

    def start(self) -> ShimThread:
        self._serve()
        return self


class DashboardThread(_AppThread):
    """The dashboard under /ui, alone as ``pipelinejobs dashboard`` serves it, or with the callback shim
    beside it on the same port (``shim_settings``), as ``pipelinejobs up`` serves them."""

    def __init__(
        self, settings: ui.DashboardSettings, shim_settings: shim.ShimSettings | None = None
    ) -> None:
        super().__init__()
        self.settings = settings
        self._shim_settings = shim_settings
        self._dashboard: ui.Dashboard | None = None

    def _app(self) -> ASGIApp:
        app = ui.create_app(self.settings)
        self._dashboard = app.state.dashboard
        apps = {ui.PREFIX: app}
        if self._shim_settings is not None:
            apps[""] = shim.create_app(self._shim_settings)
        return mounted(apps)

    def _limits(self) -> ConnectionLimits:
        # Under `up` the shim's settings govern the port they share, as here.
        return (self._shim_settings or self.settings).connections

    def start(self) -> DashboardThread:
        self._serve()
        return self

    @property
    def dashboard(self) -> ui.Dashboard:
        assert self._dashboard is not None
        return self._dashboard


def start_grpc_server(embedded: EmbeddedDatabase, **changes: Any) -> ServerThread:
    """A server with a database of its own, for the fixtures that serve a whole module."""
    return ServerThread(test_settings(embedded.uri, f"test_shim_{uuid.uuid4().hex[:12]}", **changes)).start()


_LISTENING = re.compile(r"listening on [\d.]+:(\d+)")


@dataclass
class ServerProcess:
    """``pipelinejobs serve`` in its own process, for multi-replica and crash tests."""

    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def kill(self) -> None:
        """SIGKILL: no grace, no cleanup, as a crash."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_server_process(
    uri: str, database: str, extra_env: Mapping[str, str] | None = None, timeout_s: float = 60
) -> ServerProcess:
    env = dict(os.environ)
    env.update(
        {
            "MONGODB_URI": uri,
            "PIPELINEJOBS_DATABASE": database,
            "PIPELINEJOBS_ADMIN_KEY": ADMIN_KEY,
            "PIPELINEJOBS_CLIENT_KEYS": CLIENT_KEY,
            "PIPELINEJOBS_LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra_env or {})
    # Output goes to a file, not a pipe: nobody has to keep draining it, and it is there to read on failure.
    log_path = Path(tempfile.mkdtemp(prefix="pipelinejobs-serve-")) / "serve.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelinejobs_server", "serve", "--grpc-port", "0"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = _LISTENING.search(log_path.read_text(errors="replace"))
        if match:
            return ServerProcess(process, int(match.group(1)), log_path)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError("server process did not start listening:\n" + log_path.read_text(errors="replace"))


def wait_for_line(
    log: Path, pattern: str, process: subprocess.Popen[bytes], timeout_s: float = 90
) -> re.Match[str]:
    """Wait until a process's log (a file) shows ``pattern``; fail early if the process exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(pattern, log.read_text(errors="replace"))
        if match:
            return match
        assert process.poll() is None, log.read_text(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"no {pattern!r} in:\n{log.read_text(errors='replace')}")
