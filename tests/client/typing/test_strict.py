"""``mypy --strict`` accepts a program written against the client, and catches a type mistake in one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.client.typing.program import main
from tests.servers import ServerThread
from tests.support import CLIENT_KEY, ROOT

PROGRAM = Path(__file__).resolve().parent / "program.py"
MISTAKE = """\
from pipelinejobs_client import PipelineJob
from pipelinejobs_client.api.v1 import job_pb2


def broken(job: PipelineJob) -> int:
    running: bool = job.record.state == "RUNNING"  # an enum compared with a string
    return job.status  # a str, not an int
"""


def mypy(*paths: Path) -> subprocess.CompletedProcess[str]:
    # The repository's own configuration (strict = true) plus --strict, on just these files.
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--config-file", "pyproject.toml", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_mypy_strict_accepts_the_program_and_refuses_a_mistake(tmp_path: Path) -> None:
    mistake = tmp_path / "mistake.py"
    mistake.write_text(MISTAKE)
    result = mypy(PROGRAM, mistake)
    program_errors = [line for line in result.stdout.splitlines() if line.startswith("tests/client/typing/")]
    assert program_errors == [], result.stdout
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'Incompatible return value type (got "str", expected "int")' in result.stdout
    assert "Non-overlapping equality check" in result.stdout


def test_the_program_runs(server: ServerThread) -> None:
    assert main(server.address, CLIENT_KEY) == "FAILED"
