"""The state machine as DESIGN.md section 3 writes it: the oracle every state-machine test checks against.

The table below is a verbatim copy of DESIGN.md's, parsed here. It is never read off the server's
``domain/fsm.py``, and this module imports nothing of the server: the matrices over all 11 states x 15
events (tests/domain/test_fsm.py, and over gRPC tests/api/test_fsm.py) are what catch a drift between
the design and the code. A new event or state is added here, from the design, and nowhere else.
"""

from __future__ import annotations

from typing import Final

# Copied from DESIGN.md section 3; keep it byte-for-byte identical to the design, never to fsm.py.
DESIGN_STATES: Final = (
    "CREATED, RUNNING, FAILED, FINISHED, INDEXING, VALIDATING, VALIDATED, REJECTED, FINALIZED, RETIRED, RESET"
)
DESIGN_EVENTS: Final = (
    "create, run, update, resource, fail, finish, index, indexed, validate, validated, finalize, reject, "
    "retire, reset, ready"
)
DESIGN_TABLE: Final = """
| create | (job creation only) | CREATED | service credential |
| run | CREATED, RUNNING | RUNNING | job token |
| update | CREATED, RUNNING, VALIDATING, INDEXING | = | job token |
| resource | CREATED, RUNNING | = | job token |
| fail | CREATED, RUNNING, VALIDATING, INDEXING | FAILED | job token |
| finish | RUNNING, FINISHED | FINISHED | job token |
| index | FINISHED, INDEXING | INDEXING | job token |
| indexed | FINISHED, INDEXING | FINISHED | job token |
| validate | FINISHED, VALIDATED | VALIDATING | job token |
| validated | VALIDATING, VALIDATED | VALIDATED | job token |
| reject | VALIDATING | REJECTED | job token |
| finalize | VALIDATED | FINALIZED | job token |
| retire | FAILED, FINISHED, VALIDATING, VALIDATED, REJECTED, FINALIZED | RETIRED | job token |
| reset | any state | RESET | admin credential only |
| ready | RESET | CREATED | admin credential only |
"""

STATES: Final = tuple(name.strip() for name in DESIGN_STATES.split(","))
EVENTS: Final = tuple(name.strip() for name in DESIGN_EVENTS.split(","))


def _parse_table() -> tuple[dict[tuple[str, str], str], dict[str, str]]:
    cells: dict[tuple[str, str], str] = {}
    senders: dict[str, str] = {}
    for line in DESIGN_TABLE.strip().splitlines():
        event, allowed, to, sender = (column.strip() for column in line.strip("| ").split(" | "))
        senders[event] = sender
        if allowed == "(job creation only)":
            continue  # never a transition from an existing state
        sources = STATES if allowed == "any state" else tuple(s.strip() for s in allowed.split(","))
        for source in sources:
            cells[(source, event)] = source if to == "=" else to
    return cells, senders


# (state, event) -> the state it leads to, for the 42 allowed cells; every other cell is refused.
# SENDERS: event -> who may send it, in the design's words ("job token", "admin credential only", ...).
EXPECTED, SENDERS = _parse_table()
ADMIN_EVENTS: Final = frozenset(
    event for event, sender in SENDERS.items() if sender == "admin credential only"
)


def destination(state: str, event: str) -> str | None:
    """The state the design gives for the cell, or None when the event is refused there."""
    return EXPECTED.get((state, event))
