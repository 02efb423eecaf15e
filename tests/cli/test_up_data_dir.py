"""One ``up`` per data directory, and its database dies with it: a second ``up`` on the same directory
is told at once who has it; ``up`` killed by SIGKILL takes its database along, and the next ``up`` on the
same directory starts; ``doctor --data-dir`` finds the database ``up`` runs there."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from pipelinejobs_server.storage import embedded_run
from pipelinejobs_server.storage.embedded import EXECUTABLE
from tests.servers import wait_for_line

PIPELINEJOBS = [sys.executable, "-m", "pipelinejobs_server"]

pytestmark = pytest.mark.slow  # all of `up`, with a database process of its own


def clean_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PIPELINEJOBS_")}
    env.pop("MONGODB_URI", None)
    return env


@contextmanager
def up(data_dir: Path, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``pipelinejobs up`` on ``data_dir`` with free ports, serving when entered."""
    with log.open("wb") as output:
        process = subprocess.Popen(
            [*PIPELINEJOBS, "up", "--data-dir", str(data_dir), "--grpc-port", "0", "--http-port", "0"],
            stdout=output,
            stderr=subprocess.STDOUT,
            env=clean_env(),
        )
    try:
        wait_for_line(log, r"press Ctrl-C to stop", process)
        yield process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def database_pids(data_dir: Path) -> list[int]:
    return embedded_run.leftovers(EXECUTABLE, data_dir / "db")


def wait_until(condition: object, timeout_s: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def test_up_killed_by_sigkill_takes_its_database_along_and_starts_again(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with up(data_dir, tmp_path / "first.log") as first:
        running = database_pids(data_dir)
        assert len(running) == 1, running
        first.kill()  # SIGKILL: `up` stops nothing itself
        first.wait()
        assert wait_until(lambda: not database_pids(data_dir)), "the database outlived its `up`"
    with up(data_dir, tmp_path / "second.log") as second:
        assert second.poll() is None
        assert len(database_pids(data_dir)) == 1
    assert not database_pids(data_dir), "a clean stop leaves no database either"


def test_a_second_up_on_the_same_data_directory_names_the_first_at_once(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with up(data_dir, tmp_path / "first.log") as first:
        started = time.monotonic()
        second = subprocess.run(
            [*PIPELINEJOBS, "up", "--data-dir", str(data_dir), "--grpc-port", "0", "--http-port", "0"],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
        )
        elapsed = time.monotonic() - started
        assert second.returncode == 1
        assert second.stderr.count("\n") == 1, second.stderr  # one line, no database traceback
        assert f"{data_dir} is in use by another process, pid {first.pid} (" in second.stderr
        assert "Traceback" not in second.stderr
        assert elapsed < 10, "it does not wait for the database to refuse the store"
        assert first.poll() is None, "the first `up` keeps serving"


def test_doctor_finds_the_database_up_runs_on_a_data_directory(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"

    def doctor(*arguments: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*PIPELINEJOBS, "doctor", *arguments],
            capture_output=True,
            text=True,
            env=clean_env(),
            timeout=60,
            check=False,
            cwd=cwd,
        )

    with up(data_dir, tmp_path / "up.log"):
        found = doctor("--data-dir", str(data_dir))
        assert found.returncode == 0, found.stderr
        assert found.stdout.startswith("healthy: database 'pipelinejobs', 0 jobs")
        # From the directory where `up` runs, with its default data directory, no flag at all.
        (tmp_path / ".pipelinejobs").symlink_to(data_dir)
        plain = doctor(cwd=tmp_path)
        assert plain.returncode == 0, plain.stderr
    stopped = doctor("--data-dir", str(data_dir))
    assert stopped.returncode == 3
    assert re.search(r"no database is running on .*data", stopped.stderr), stopped.stderr
