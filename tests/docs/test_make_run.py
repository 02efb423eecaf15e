"""``make run`` installs the service alone (the server and the embedded database), never the test tools:
a fresh clone serves in seconds instead of after a minute of playwright, schemathesis and mypy. Read off
``make -n`` in a scratch venv path, so nothing is installed or run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support import ROOT


def planned(target: str, venv: Path) -> str:
    if shutil.which("make") is None:
        pytest.fail("make is missing: the README's two commands need it")
    return subprocess.run(
        ["make", "-n", target, f"VENV={venv}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout


def test_make_run_installs_the_server_and_the_embedded_database_only(tmp_path: Path) -> None:
    run = planned("run", tmp_path / "venv")
    assert "pip install --quiet --no-compile -e '.[server,embedded]'" in run
    assert "[dev]" not in run
    assert f"{tmp_path / 'venv'}/bin/pipelinejobs up" in run


def test_make_test_installs_the_development_tools(tmp_path: Path) -> None:
    assert "pip install --quiet -e '.[dev]'" in planned("test", tmp_path / "venv")
