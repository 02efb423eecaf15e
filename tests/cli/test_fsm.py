"""``pipelinejobs fsm`` (cli/fsm.py): no key needed; the JSON, the table and README's Mermaid diagram.

Commands run in-process through ``main(argv, environ=...)`` (fast; the environment is a dict, never the
real one), their ``--json`` output is parsed, and their exit codes and one-line errors are checked."""

from __future__ import annotations

import re

from tests.cli.helpers import Cli
from tests.support import ROOT


def test_fsm_needs_no_key_and_matches_the_readme(cli: Cli) -> None:
    machine = cli("fsm", "--json", key=None).json()
    assert machine["initial_state"] == "CREATED"
    assert len(machine["states"]) == 11
    assert len(machine["events"]) == 15
    cells = {(cell["event"], cell["from"]): cell for cell in machine["transitions"]}
    assert cells[("create", None)]["to"] == "CREATED"
    assert cells[("run", "CREATED")] == {
        "event": "run",
        "from": "CREATED",
        "to": "RUNNING",
        "permission": "job_token",
    }
    assert {state for event, state in cells if event == "reset"} == set(machine["states"])
    assert cells[("ready", "RESET")]["permission"] == "admin"

    readme = (ROOT / "README.md").read_text()
    diagram = re.search(r"<!-- fsm:start.*?```mermaid\n(.*?)```", readme, re.S)
    assert diagram is not None
    assert cli("fsm", "--mermaid", key=None).out == diagram.group(1)

    rows = {line.split()[0]: line for line in cli("fsm", key=None).out.splitlines()[1:]}
    assert list(rows) == machine["events"]
    assert "= (unchanged, recorded)" in rows["update"]
    assert "any state" in rows["reset"]
    assert "(job creation only)" in rows["create"]
    assert "admin key only" in rows["ready"]
