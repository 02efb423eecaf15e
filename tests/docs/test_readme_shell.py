"""The README's shell blocks run as pasted, in a directory laid out like a fresh clone after ``make run``:
the project's ``.venv``, and ``pipelinejobs up`` running there with its default data directory
(``.pipelinejobs``). Each block runs in a shell of its own, as in a new terminal, and all of them run
twice: the examples are re-runnable. Only the address changes (``up`` gets free ports here)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import wait_for_line
from tests.support import ROOT

README = ROOT / "README.md"
MARK = "<!-- shell: runs in tests/docs/test_readme_shell.py -->"
# The shell blocks the test does not run, each for its reason (a new one must be run or named here).
NOT_RUN = {
    "make run ": "the test stands for it: it starts `up` as `make run` does",
    "pip install 'pipelinejobs[server]'": "production: a replica set and secrets the test does not have",
}

pytestmark = pytest.mark.slow  # all of `up`, with a database process of its own


def shell_blocks() -> tuple[list[str], list[str]]:
    """The marked blocks, and the first lines of the unmarked ones."""
    marked, unmarked = [], []
    for match in re.finditer(r"(<!--[^\n]*-->\n)?```sh\n(.*?)```", README.read_text(), re.DOTALL):
        if match.group(1) and match.group(1).strip() == MARK:
            marked.append(match.group(2))
        else:
            unmarked.append(match.group(2).splitlines()[0])
    return marked, unmarked


@dataclass
class Clone:
    path: Path
    grpc_address: str


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Clone]:
    path = tmp_path / "pipelinejobs"
    path.mkdir()
    (path / ".venv").symlink_to(Path(sys.prefix))  # what `make run` made
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(path / ".venv" / "bin" / "pipelinejobs"), "up", "--grpc-port", "0", "--http-port", "0"],
            cwd=path,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        wait_for_line(log, r"press Ctrl-C to stop", process)
        port = re.search(r"^gRPC server listening on 127\.0\.0\.1:(\d+) ", log.read_text(), re.M)
        assert port is not None
        yield Clone(path, f"127.0.0.1:{port.group(1)}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_every_shell_block_is_run_or_named_with_its_reason() -> None:
    marked, unmarked = shell_blocks()
    assert len(marked) >= 2
    assert sorted(first for first in unmarked if not first.startswith(tuple(NOT_RUN))) == []
    assert len(unmarked) == len(NOT_RUN)


def test_the_readme_shell_blocks_run_as_pasted_twice(clone: Clone) -> None:
    marked, _ = shell_blocks()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PIPELINEJOBS_", "VIRTUAL_ENV"))
    }
    # A terminal's PATH, without this interpreter's venv: the block must put `pipelinejobs` on it itself.
    env["PATH"] = os.pathsep.join(
        entry for entry in env.get("PATH", "").split(os.pathsep) if not entry.startswith(sys.prefix)
    )
    outputs = []
    for attempt in (1, 2):
        for index, block in enumerate(marked):
            ran = subprocess.run(
                ["bash", "-e", "-o", "pipefail", "-c", block.replace("127.0.0.1:50051", clone.grpc_address)],
                cwd=clone.path,
                capture_output=True,
                text=True,
                env=env,
                timeout=240,
                check=False,
            )
            assert ran.returncode == 0, f"run {attempt}, block {index}:\n{block}\n{ran.stdout}\n{ran.stderr}"
            assert "error:" not in ran.stderr, ran.stderr
            outputs.append(ran.stdout)
    health, session = outputs[0], outputs[1]
    assert health.strip() == f"{clone.grpc_address}: SERVING"
    assert "FINISHED" in session
    assert "stateDiagram-v2" in session, "the last command, fsm --mermaid, ran"
    assert (clone.path / "job.prov.json").stat().st_size > 0
    assert outputs[3] != session, "the second run is a job of its own"
