"""Every variable the README's configuration table documents is read by the code: a setting that
is documented but ignored lets an operator believe they changed something they did not."""

from __future__ import annotations

import re

from tests.support import ROOT

SOURCES = [ROOT / "server" / "pipelinejobs_server", ROOT / "pipelinejobs_client"]


def documented() -> set[str]:
    return set(re.findall(r"^\| `(PIPELINEJOBS_[A-Z0-9_]+)`", (ROOT / "README.md").read_text(), re.MULTILINE))


def read_by_the_code() -> str:
    return "\n".join(path.read_text() for source in SOURCES for path in source.rglob("*.py"))


def test_the_table_documents_the_settings() -> None:
    assert len(documented()) > 20, "README.md lost its configuration table"


def test_every_documented_variable_is_read() -> None:
    code = read_by_the_code()
    ignored = sorted(name for name in documented() if f'"{name}"' not in code)
    assert not ignored, f"README.md documents variables the code never reads: {ignored}"
