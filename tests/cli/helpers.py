"""What the CLI tests share: running ``pipelinejobs`` in-process and reading what it printed, and making a
job with it. The fixtures built on these (``cli``, ``offline``, ``pipeline``) are in conftest.py."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import pytest

from pipelinejobs_client.cli import main
from tests.support import CLIENT_KEY

ISO_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
LINKS = ("--lab", "UW_BIOFAB", "--experiment", "Yeast-Gates", "--sample", "sample.uw_biofab.133737/A2")
UNKNOWN_JOB = "00000000-0000-4000-8000-000000000000"


@dataclass
class Run:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        assert self.code == 0, self.err
        return json.loads(self.out)

    def error_line(self) -> str:
        """The failure's stderr, which must be exactly one ``error: ...`` line."""
        lines = self.err.splitlines()
        assert len(lines) == 1, self.err
        assert lines[0].startswith("error: "), self.err
        return lines[0]


class Cli:
    """Runs ``pipelinejobs`` in-process and keeps everything it printed, for the secrets check."""

    def __init__(self, capsys: pytest.CaptureFixture[str], address: str) -> None:
        self._capsys = capsys
        self.address = address
        self.runs: list[tuple[tuple[str, ...], Run]] = []

    def __call__(self, *argv: str, key: str | None = CLIENT_KEY, **environ: str) -> Run:
        env = {"PIPELINEJOBS_SERVER": self.address, **environ}
        if key:
            env["PIPELINEJOBS_API_KEY"] = key
        self._capsys.readouterr()
        code = main(list(argv), environ=env)
        captured = self._capsys.readouterr()
        run = Run(code, captured.out, captured.err)
        self.runs.append((argv, run))
        return run


def create(cli: Cli, pipeline: str, *extra: str) -> dict[str, Any]:
    created: dict[str, Any] = cli("jobs", "create", "--pipeline", pipeline, *LINKS, *extra, "--json").json()
    return created
