"""``pipelinejobs pipelines register|list|show`` (cli/pipelines.py) against a live server, and the JSON values
of ``--option``.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipelinejobs_client.cli.common import option
from tests.cli.helpers import ISO_MS_UTC, Cli


def test_pipelines_register_list_and_show(cli: Cli) -> None:
    argv = ["pipelines", "register", "--name", "fcs-etl", "--description", "FCS to CSV"]
    argv += ["--component", "fcs-etl@0.4.0u2", "--component", "tidy"]
    argv += ["--option", "threads=4", "--option", "mode=fast", "--option", 'levels=[1, "b"]']
    first = cli(*argv, "--json").json()
    again = cli(*argv, "--json").json()
    assert (first["created"], again["created"]) == (True, False)
    pipeline = first["pipeline"]
    assert again["pipeline"] == pipeline
    assert pipeline["options"] == {"threads": 4, "mode": "fast", "levels": [1, "b"]}
    assert {part["id"]: part["version"] for part in pipeline["components"]} == {
        "fcs-etl": "0.4.0u2",
        "tidy": "",
    }
    assert ISO_MS_UTC.match(pipeline["create_time"])

    assert cli("pipelines", "show", pipeline["uuid"], "--json").json() == pipeline
    assert cli("pipelines", "list", "--json").json() == [pipeline]

    table = cli("pipelines", "list")
    assert table.code == 0
    header, row = table.out.splitlines()
    assert header.split() == ["UUID", "NAME", "CREATED", "COMPONENTS"]
    assert row.startswith(pipeline["uuid"])
    assert row.endswith("fcs-etl@0.4.0u2, tidy")
    shown = dict(line.split(None, 1) for line in cli("pipelines", "show", pipeline["uuid"]).out.splitlines())
    assert json.loads(shown["options"]) == pipeline["options"]
    assert shown["components"] == "fcs-etl@0.4.0u2, tidy"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("threads=4", ("threads", 4)),
        ("ratio=0.5", ("ratio", 0.5)),
        ("debug=true", ("debug", True)),
        ("mode=fast", ("mode", "fast")),
        ('version="4"', ("version", "4")),
        ("empty=", ("empty", "")),
        ("url=a=b", ("url", "a=b")),
        ('params={"a": 1}', ("params", {"a": 1})),
    ],
)
def test_option_values_are_json_when_they_parse(text: str, expected: tuple[str, Any]) -> None:
    assert option(text) == expected
