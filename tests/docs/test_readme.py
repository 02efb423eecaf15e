"""The README's Python examples run, unchanged but for the server address, against a real server, each
twice: each example is a job of its own, and running it again is allowed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

from pipelinejobs_client import JobsClient
from tests.servers import ServerThread
from tests.support import CLIENT_KEY, ROOT

README = ROOT / "README.md"


def block(name: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- {name}:start -->\s*```python\n(.*?)```\s*<!-- {name}:end -->", text, re.DOTALL)
    assert found is not None, f"README.md lost its {name} block"
    return found.group(1)


def run(code: str, address: str, namespace: dict[str, object]) -> list[str]:
    assert "127.0.0.1:50051" in code or "PIPELINEJOBS_SERVER" not in code
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code.replace("127.0.0.1:50051", address), "README.md", "exec"), namespace)  # noqa: S102
    return printed.getvalue().splitlines()


@pytest.fixture
def session(server: ServerThread, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> ServerThread:
    """What the README's first shell block sets, in a directory that is not the repository."""
    monkeypatch.setenv("PIPELINEJOBS_SERVER", server.address)
    monkeypatch.setenv("PIPELINEJOBS_API_KEY", CLIENT_KEY)
    monkeypatch.chdir(tmp_path)
    return server


def test_readme_example_runs(session: ServerThread) -> None:
    code = block("example")
    assert "127.0.0.1:50051" in code
    first = run(code, session.address, {})
    assert first[1].endswith("&status=${STATUS}")
    assert first[2] == "JOB_STATE_RUNNING"
    assert first[3] == "['JOB_EVENT_CREATE', 'JOB_EVENT_RUN', 'JOB_EVENT_UPDATE']"
    assert first[4] == "True"
    again = run(code, session.address, {})
    assert again[0] == first[0], "the same inputs name the same job"
    assert again[2:] == [
        "JOB_STATE_RUNNING",
        # The run's idempotency key was applied already: it is replayed, not repeated.
        "['JOB_EVENT_CREATE', 'JOB_EVENT_RUN', 'JOB_EVENT_UPDATE', 'JOB_EVENT_UPDATE']",
        "True",
    ]


def test_readme_pipelinejob_example_runs_outside_a_reactor(
    session: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    with JobsClient(session.address, api_key=CLIENT_KEY) as client:
        pipeline = client.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
    monkeypatch.setenv("_REACTOR_PIPELINES_PIPELINE_UUID", pipeline)
    code = block("pipelinejob")
    first: dict[str, object] = {}
    assert run(code, session.address, first)[1] == "RUNNING"
    raw: dict[str, object] = {}
    run(block("example"), session.address, raw)
    assert first["my_job"].uuid != raw["created"].job.uuid, "each example names its own job"  # type: ignore[attr-defined]
    again: dict[str, object] = {}
    assert run(code, session.address, again)[1] == "RUNNING"
    assert again["my_job"].uuid == first["my_job"].uuid  # type: ignore[attr-defined]
