"""The README's Python example runs, unchanged but for the server address, against a real server."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from tests.servers import ServerThread
from tests.support import CLIENT_KEY, ROOT

README = ROOT / "README.md"


def example() -> str:
    text = README.read_text()
    block = re.search(r"<!-- example:start -->\s*```python\n(.*?)```\s*<!-- example:end -->", text, re.DOTALL)
    assert block is not None, "README.md lost its example block"
    return block.group(1)


def test_readme_example_runs(server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code = example()
    assert "127.0.0.1:50051" in code
    (tmp_path / ".pipelinejobs").mkdir()
    (tmp_path / ".pipelinejobs" / "client.key").write_text(CLIENT_KEY + "\n")
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace("127.0.0.1:50051", server.address), "README.md", "exec"), {})  # noqa: S102
    lines = printed.getvalue().splitlines()
    assert lines[1].endswith("&status=${STATUS}")
    assert lines[2] == "JOB_STATE_RUNNING"
    assert lines[3] == "['JOB_EVENT_CREATE', 'JOB_EVENT_RUN', 'JOB_EVENT_UPDATE']"
    assert lines[4] == "True"
