"""Which database ``pipelinejobs doctor`` reads: a flag over a variable, a URI over a data directory given
the same way, and with none of them the default data directory of ``up`` when it exists."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from pipelinejobs_server.cli.doctor import where


def options(uri: str | None = None, data_dir: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(mongodb_uri=uri, data_dir=data_dir)


@pytest.mark.parametrize(
    ("given", "environ", "expected"),
    [
        (options(uri="mongodb://flag"), {"PIPELINEJOBS_DATA_DIR": "env-dir"}, ("mongodb://flag", "")),
        (options(data_dir="flag-dir"), {"MONGODB_URI": "mongodb://env"}, ("", "flag-dir")),
        (options(uri="mongodb://flag", data_dir="flag-dir"), {}, ("mongodb://flag", "")),
        (
            options(),
            {"MONGODB_URI": "mongodb://env", "PIPELINEJOBS_DATA_DIR": "env-dir"},
            ("mongodb://env", ""),
        ),
        (options(), {"PIPELINEJOBS_DATA_DIR": "env-dir"}, ("", "env-dir")),
    ],
)
def test_a_flag_wins_over_a_variable_and_a_uri_over_a_data_directory(
    given: argparse.Namespace, environ: dict[str, str], expected: tuple[str, str]
) -> None:
    assert where(given, environ) == expected


def test_without_anything_the_default_data_directory_when_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert where(options(), {}) == ("", "")
    (tmp_path / ".pipelinejobs").mkdir()
    assert where(options(), {}) == ("", ".pipelinejobs")
