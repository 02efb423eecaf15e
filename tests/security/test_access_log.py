"""F14: the HTTP access log cannot be forged through the URL path, and a token in the path is masked.

A real shim (uvicorn on a free port) in front of a real server; the requests are sent as raw bytes, so
the path reaches the server exactly as an attacker would write it.
"""

from __future__ import annotations

import logging
import socket
import time
from urllib.parse import urlsplit

import pytest

from pipelinejobs_client import JobsClient
from tests.servers import ShimThread
from tests.shim.helpers import new_job

ACCESS = "pipelinejobs.shim.access"


def raw_get(url: str, target: str) -> bytes:
    """Send ``GET target`` byte for byte (no client library normalises it) and read the whole answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode("latin-1"))
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def access_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == ACCESS]


def wait_for_access_line(caplog: pytest.LogCaptureFixture, count: int) -> list[str]:
    # The shim logs on its own thread, after the answer has gone out.
    deadline = time.monotonic() + 10
    while len(access_lines(caplog)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    return access_lines(caplog)


@pytest.mark.parametrize(
    "encoded",
    [
        "%0a",  # LF: the finding's line break
        "%0d%0a",  # CRLF
        "%1b[31m",  # a terminal escape sequence
        "%e2%80%a8",  # U+2028 LINE SEPARATOR, a line break to str.splitlines and many viewers
        "%c2%85",  # U+0085 NEXT LINE
    ],
)
def test_a_line_break_in_the_path_cannot_forge_a_log_line(
    shim: ShimThread, caplog: pytest.LogCaptureFixture, encoded: str
) -> None:
    """F14: ``/x%0a<fake line>`` wrote a second, real-looking line into the access log."""
    caplog.set_level(logging.INFO, logger=ACCESS)
    forged = "2026-12-01%2020:30:00,000%20WARNING%20pipelinejobs.rpc%20FORGED"
    answer = raw_get(shim.url, f"/x{encoded}{forged}")
    assert answer.startswith(b"HTTP/1.1 404")
    (line,) = wait_for_access_line(caplog, 1)
    assert len(line.splitlines()) == 1, line
    assert line.isprintable(), repr(line)
    assert "FORGED" in line, "the request is still logged, escaped"


def test_a_token_in_the_url_path_is_masked(
    shim: ShimThread, shim_jobs: JobsClient, shim_pipeline: str, caplog: pytest.LogCaptureFixture
) -> None:
    """F14: ``GET /v1/callbacks/agave/<token>`` (a mistyped callback URL) logged the token in clear."""
    caplog.set_level(logging.INFO, logger=ACCESS)
    created = new_job(shim_jobs, shim_pipeline)
    raw_get(shim.url, f"/v1/callbacks/agave/{created.token}")
    raw_get(shim.url, f"/v1/callbacks/agave/{created.job.uuid}/token={created.token}")
    lines = wait_for_access_line(caplog, 2)
    text = "\n".join(lines)
    assert created.token not in text
    assert "/v1/callbacks/agave/REDACTED" in text
    assert f"/v1/callbacks/agave/{created.job.uuid}/" in text, "a job's uuid is no secret and stays"


def test_a_long_path_is_truncated(shim: ShimThread, caplog: pytest.LogCaptureFixture) -> None:
    """F14: the whole path went into the log, however long (up to h11's 16 KiB head)."""
    caplog.set_level(logging.INFO, logger=ACCESS)
    raw_get(shim.url, "/" + "a/" * 4000)
    (line,) = wait_for_access_line(caplog, 1)
    assert len(line) < 600
    assert "..." in line
