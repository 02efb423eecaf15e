"""``pipelinejobs fsm``: the state machine as the service describes it (GetStateMachine, no key needed).

The table and the Mermaid diagram are drawn from the service's answer, never from a copy of the table,
so they show what the server enforces. The diagram follows the same conventions as the README's
(generated from the server's own table), and a test holds the two equal.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_client.names import event_name, state_name

from . import common, output

WHO = {
    "service": "the service, at creation",
    "job_token": "job token (or admin key)",
    "admin": "admin key only",
}


def add_commands(commands: argparse._SubParsersAction[common.Parser]) -> None:
    """``pipelinejobs fsm [--mermaid | --json]``."""
    parser = commands.add_parser("fsm", help="the job state machine: table, Mermaid diagram or JSON")
    shape = parser.add_mutually_exclusive_group()
    shape.add_argument("--mermaid", action="store_true", help="print a Mermaid state diagram")
    common.add_json_flag(shape)
    common.add_connection_arguments(parser)
    parser.set_defaults(handler=show_machine)


def machine(reply: job_service_pb2.GetStateMachineResponse) -> dict[str, Any]:
    """The ``--json`` shape: names instead of enum numbers; ``from`` is null for the creation event."""
    return {
        "initial_state": state_name(reply.initial_state),
        "states": [state_name(state) for state in reply.states],
        "events": [event_name(event) for event in reply.events],
        "transitions": [
            {
                "event": event_name(cell.event),
                "from": state_name(cell.source) or None,
                "to": state_name(cell.destination),
                "permission": job_pb2.Permission.Name(cell.permission).removeprefix("PERMISSION_").lower(),
            }
            for cell in reply.transitions
        ],
    }


@dataclass(frozen=True)
class Rule:
    """One event's row: where it is allowed from, where it leads, who may send it."""

    event: str
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    permission: str

    def from_text(self, states: list[str]) -> str:
        """The ALLOWED FROM cell."""
        if not self.sources:
            return "(job creation only)"
        if set(self.sources) == set(states):
            return "any state"
        return ", ".join(self.sources)

    def to_text(self) -> str:
        """The TO cell: ``=`` when every source stays where it is."""
        if self.sources and self.sources == self.destinations:
            return "= (unchanged, recorded)"
        if len(set(self.destinations)) == 1:
            return self.destinations[0]
        return ", ".join(f"{a}->{b}" for a, b in zip(self.sources, self.destinations, strict=True))


def rules(view: dict[str, Any]) -> list[Rule]:
    """The transitions grouped by event, in the service's event order: one table row each."""
    result = []
    for event in view["events"]:
        cells = [cell for cell in view["transitions"] if cell["event"] == event]
        if not cells:
            continue
        sources = tuple(cell["from"] for cell in cells if cell["from"])
        destinations = tuple(cell["to"] for cell in cells if cell["from"]) or (cells[0]["to"],)
        result.append(Rule(event, sources, destinations, cells[0]["permission"]))
    return result


def mermaid(view: dict[str, Any]) -> str:
    """A ``stateDiagram-v2``: one edge per (from, to) pair with its events.

    An event allowed from every state (``reset``) becomes a note: an edge from each state would bury
    the diagram. The creation event is the ``[*]`` edge.
    """
    everywhere = {rule.event for rule in rules(view) if set(rule.sources) == set(view["states"])}
    lines = ["stateDiagram-v2"]
    edges: dict[tuple[str, str], list[str]] = {}
    notes = []
    for cell in view["transitions"]:
        label = f"{cell['event']} (admin)" if cell["permission"] == "admin" else cell["event"]
        if cell["from"] is None:
            lines.append(f"    [*] --> {cell['to']}: {cell['event']}")
        elif cell["event"] in everywhere:
            note = f"    note right of {cell['to']}: {label} is allowed from every state"
            if note not in notes:
                notes.append(note)
        else:
            edges.setdefault((cell["from"], cell["to"]), []).append(label)
    lines += [f"    {source} --> {target}: {', '.join(labels)}" for (source, target), labels in edges.items()]
    return "\n".join([*lines, *notes]) + "\n"


def show_machine(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print the state machine as a table, a Mermaid diagram or JSON."""
    with common.connect(options, environ) as client:
        view = machine(client.get_state_machine())
    if options.json:
        output.emit_json(view)
    elif options.mermaid:
        print(mermaid(view), end="")
    else:
        output.table(
            ("EVENT", "ALLOWED FROM", "TO", "WHO MAY SEND IT"),
            (
                (rule.event, rule.from_text(view["states"]), rule.to_text(), WHO.get(rule.permission))
                for rule in rules(view)
            ),
        )
    return 0
