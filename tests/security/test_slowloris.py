"""F6: HTTP connections that send nothing, or dribble their head or body, are closed after a deadline;
connections over the cap are refused; and a pile of them cannot starve gRPC of file descriptors.

Real sockets against a real shim (uvicorn on a free port, in front of a real server), with deadlines of
a fraction of a second so the suite stays quick; `pipelinejobs up` and `shim` as programs for the
file-descriptor budget, run with a small open-file limit.
"""

from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from pipelinejobs_client import JobsClient
from pipelinejobs_server.web.connections import ConnectionLimits
from tests.servers import ServerThread, ShimThread, wait_for_line
from tests.support import CALLBACK_KEY_SECRET, eventually

HEAD_S, BODY_S, IDLE_S = 0.5, 0.5, 1
QUICK = ConnectionLimits(
    head_timeout_s=HEAD_S, body_timeout_s=BODY_S, idle_timeout_s=IDLE_S, max_connections=100
)
SLACK_S = 2.0  # scheduling on a shared machine: a deadline is met within this


@pytest.fixture(scope="module")
def guarded(shim: ShimThread) -> Iterator[ShimThread]:
    thread = ShimThread(replace(shim.settings, connections=QUICK)).start()
    yield thread
    thread.stop()


def address(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname is not None
    assert parts.port is not None
    return parts.hostname, parts.port


@contextmanager
def sockets(url: str, count: int) -> Iterator[list[socket.socket]]:
    with ExitStack() as stack:
        opened = [
            stack.enter_context(socket.create_connection(address(url), timeout=5)) for _ in range(count)
        ]
        for sock in opened:
            sock.setblocking(False)
        yield opened


def closed_by_peer(sock: socket.socket) -> bool:
    """Whether the server has closed (or reset) this connection; reads and drops anything it sent."""
    readable, _, _ = select.select([sock], [], [], 0)
    if not readable:
        return False
    try:
        while data := sock.recv(65536):
            del data
    except BlockingIOError:
        return False
    except OSError:
        return True
    return True


def dribble(sock: socket.socket, chunk: bytes) -> bool:
    """Send one more piece; False once the server has cut the connection."""
    try:
        sock.sendall(chunk)
    except BlockingIOError:
        return True
    except OSError:
        return False
    return True


def wait_until_closed(
    silent: list[socket.socket], dribbling: list[socket.socket], chunk: bytes, deadline_s: float
) -> float:
    """Dribble ``chunk`` on ``dribbling`` every 0.1 s until every socket is closed; how long it took."""
    started = time.monotonic()
    open_ = set(silent) | set(dribbling)
    while open_ and time.monotonic() - started < deadline_s:
        for sock in list(open_):
            if closed_by_peer(sock) or (sock in dribbling and not dribble(sock, chunk)):
                open_.discard(sock)
        time.sleep(0.1)
    assert not open_, f"{len(open_)} of {len(silent) + len(dribbling)} connections still open"
    return time.monotonic() - started


def test_silent_and_dribbling_connections_are_closed_after_the_head_timeout(guarded: ShimThread) -> None:
    """F6: 200 sockets dribbling one header line every 10 s and 20 silent ones all stayed open."""
    with sockets(guarded.url, 20) as silent, sockets(guarded.url, 40) as dribbling:
        for sock in dribbling:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        took = wait_until_closed(silent, dribbling, b"X-Dribble: 1\r\n", HEAD_S + SLACK_S)
    assert took >= HEAD_S * 0.8, "each header line must not restart the deadline, nor end it early"


def test_a_dribbled_body_is_cut_off_after_the_body_timeout(guarded: ShimThread) -> None:
    """F6: a body sent a byte at a time held its connection (and a request task) for ever."""
    head = b"POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
    with sockets(guarded.url, 10) as dribbling:
        for sock in dribbling:
            sock.sendall(head + b"{")
        wait_until_closed([], dribbling, b" ", BODY_S + SLACK_S)


def test_a_kept_alive_connection_is_closed_when_idle_and_cannot_be_held_by_dribbling(
    guarded: ShimThread,
) -> None:
    """F6: after a response, the keep-alive timer is the only one, and each byte received cancels it."""
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    with sockets(guarded.url, 2) as (idle, dribbling):
        for sock in (idle, dribbling):
            sock.sendall(request)
        time.sleep(0.3)
        for sock in (idle, dribbling):
            assert sock.recv(65536).startswith(b"HTTP/1.1 200"), "kept alive after a good request"
        dribbling.sendall(b"GET /healthz HTTP/1.1\r\n")
        took = wait_until_closed([idle], [dribbling], b"X-Dribble: 1\r\n", IDLE_S + SLACK_S)
    assert took < IDLE_S + SLACK_S


def serves_again(url: str) -> None:
    """Once the piled connections are closed the shim serves again (it notices each close in turn)."""

    def ready() -> bool:
        answer = httpx.get(f"{url}/healthz", timeout=10)
        return answer.status_code == 200 and answer.json() == {"ready": True, "server": "SERVING"}

    eventually(ready, timeout_s=10, what=f"{url}/healthz to answer 200")


def open_descriptors(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def test_connections_over_the_cap_are_refused_at_once(shim: ShimThread) -> None:
    """F6: there was no connection limit; every socket opened held a descriptor in the server."""
    limits = ConnectionLimits(head_timeout_s=30, max_connections=20)
    capped = ShimThread(replace(shim.settings, connections=limits)).start()
    try:
        baseline = open_descriptors(os.getpid())
        with sockets(capped.url, 100) as opened:
            # A closed socket keeps reading as closed, so the count only grows while the shim catches up.
            eventually(lambda: sum(closed_by_peer(sock) for sock in opened) >= 80, 10, "80 of 100 refused")
            # This process holds both ends: the 100 client sockets, and what the shim still holds.
            held_by_shim = open_descriptors(os.getpid()) - baseline - len(opened)
            assert held_by_shim <= 25, held_by_shim
        serves_again(capped.url)
    finally:
        capped.stop()


def test_a_refused_connection_is_told_to_come_back(shim: ShimThread) -> None:
    """F6: a client over the cap gets a 503 it can act on, not a silent reset."""
    limits = ConnectionLimits(head_timeout_s=30, max_connections=1)
    capped = ShimThread(replace(shim.settings, connections=limits)).start()
    try:
        with sockets(capped.url, 1), socket.create_connection(address(capped.url), timeout=5) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answer = extra.recv(65536)
        assert answer.startswith(b"HTTP/1.1 503"), answer
        assert b"retry-after: 5" in answer
    finally:
        capped.stop()


# A program allowed only ``limit`` open files (soft and hard): set in a fresh interpreter, which then
# becomes the program, so nothing runs between fork and exec in this threaded test process.
WITH_FILE_LIMIT = (
    "import os, resource, sys; limit = int(sys.argv[1]); "
    "resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit)); "
    "os.execv(sys.executable, [sys.executable, '-m', 'pipelinejobs_server', *sys.argv[2:]])"
)


def limited(limit: int, *arguments: str) -> list[str]:
    return [sys.executable, "-c", WITH_FILE_LIMIT, str(limit), *arguments]


@pytest.mark.slow
def test_under_up_a_pile_of_http_connections_leaves_grpc_and_the_database_working(tmp_path: Path) -> None:
    """F6: under `up` the HTTP apps, the gRPC server and the database driver share one descriptor table,
    and nothing kept HTTP from taking all of it. Here the process may open 256 files; 300 silent HTTP
    connections are opened, and a gRPC call that writes to the database still works."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    env["PIPELINEJOBS_HTTP_HEAD_TIMEOUT_S"] = "60"  # they stay for the whole test
    log = tmp_path / "up.log"
    arguments = ["up", "--data-dir", str(tmp_path / "data"), "--grpc-port", "0", "--http-port", "0"]
    with log.open("wb") as output:
        process = subprocess.Popen(limited(256, *arguments), stdout=output, stderr=subprocess.STDOUT, env=env)
    try:
        wait_for_line(log, "press Ctrl-C to stop", process)
        text = log.read_text()
        grpc_port = int(re.search(r"gRPC server listening on 127\.0\.0\.1:(\d+)", text).group(1))  # type: ignore[union-attr]
        url = re.search(r"callback shim listening on (http://\S+)", text).group(1)  # type: ignore[union-attr]
        assert "HTTP connections capped at 128" in text
        key = (tmp_path / "data" / "client.key").read_text().strip()
        with sockets(url, 300) as piled:
            eventually(lambda: sum(closed_by_peer(sock) for sock in piled) >= 150, 10, "150 of 300 refused")
            assert open_descriptors(process.pid) < 256
            # A new gRPC connection, and calls that write to the database, while the pile stands.
            with JobsClient(f"127.0.0.1:{grpc_port}", api_key=key, timeout=10) as jobs:
                pipeline = jobs.register_pipeline("fd-budget", ["fd-budget@1"]).pipeline.uuid
                created = jobs.create_job(pipeline, lab="UW_BIOFAB", data={"piled": 300})
                jobs.send_event(created.job.uuid, "run", token=created.token)
                assert jobs.get_job(created.job.uuid).seq == 2
            # The HTTP port itself is full: it says so at once.
            assert httpx.get(f"{url}/healthz", timeout=10).status_code == 503
        serves_again(url)
        process.terminate()
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_a_standalone_shim_keeps_its_connections_within_its_file_limit(
    shim_server: ServerThread, tmp_path: Path
) -> None:
    """F6: the shim alone, allowed 128 open files and asked for 1,000 connections, holds at most half of
    its files with them and still relays to the server."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.update(
        {
            "PIPELINEJOBS_CALLBACK_KEY_SECRET": CALLBACK_KEY_SECRET,
            "PIPELINEJOBS_HTTP_HEAD_TIMEOUT_S": "60",
            "PIPELINEJOBS_HTTP_MAX_CONNECTIONS": "1000",
        }
    )
    log = tmp_path / "shim.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            limited(128, "shim", "--server", shim_server.address, "--port", "0"),
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        url = wait_for_line(log, r"callback shim listening on (http://\S+) ", process).group(1)
        wait_for_line(log, "press Ctrl-C to stop", process)
        with sockets(url, 200):
            time.sleep(1.0)
            assert open_descriptors(process.pid) < 128
        assert "HTTP connections capped at 64" in log.read_text()
        serves_again(url)
    finally:
        process.terminate()
        process.wait(timeout=30)
