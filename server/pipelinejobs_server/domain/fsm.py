"""The PipelineJob state machine, defined once.

``RULES`` is the state machine's table (README, "The state machine"), as data. One module-level
``transitions`` machine is built from it (``model=None``: one shared machine, never one per job or
request), and every other view — ``decide``, the store's compare-and-set, ``GetStateMachine``, the
README diagram — is read off that machine, so the table cannot drift between them.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from transitions import Machine

STATES: Final = (
    "CREATED",
    "RUNNING",
    "FAILED",
    "FINISHED",
    "INDEXING",
    "VALIDATING",
    "VALIDATED",
    "REJECTED",
    "FINALIZED",
    "RETIRED",
    "RESET",
)
EVENTS: Final = (
    "create",
    "run",
    "update",
    "resource",
    "fail",
    "finish",
    "index",
    "indexed",
    "validate",
    "validated",
    "finalize",
    "reject",
    "retire",
    "reset",
    "ready",
)
INITIAL_STATE: Final = "CREATED"
CREATE_EVENT: Final = "create"
STARTED_STATE: Final = "RUNNING"
"""A job that has been in this state has started: CancelJob may no longer delete it (README, "The state
machine")."""
SAME: Final = "="
"""Destination meaning "the state does not change; the event is still recorded"."""


class Permission(enum.Enum):
    SERVICE = "service"  # only the service itself, at job creation
    JOB_TOKEN = "job_token"  # noqa: S105 - the job token (or an admin credential) may send it
    ADMIN = "admin"  # an admin credential only


@dataclass(frozen=True)
class Rule:
    event: str
    sources: tuple[str, ...]
    destination: str
    permission: Permission


_ALL = STATES
_TOKEN = Permission.JOB_TOKEN

RULES: Final = (
    Rule("create", (), "CREATED", Permission.SERVICE),
    Rule("run", ("CREATED", "RUNNING"), "RUNNING", _TOKEN),
    Rule("update", ("CREATED", "RUNNING", "VALIDATING", "INDEXING"), SAME, _TOKEN),
    Rule("resource", ("CREATED", "RUNNING"), SAME, _TOKEN),
    Rule("fail", ("CREATED", "RUNNING", "VALIDATING", "INDEXING"), "FAILED", _TOKEN),
    Rule("finish", ("RUNNING", "FINISHED"), "FINISHED", _TOKEN),
    Rule("index", ("FINISHED", "INDEXING"), "INDEXING", _TOKEN),
    Rule("indexed", ("FINISHED", "INDEXING"), "FINISHED", _TOKEN),
    Rule("validate", ("FINISHED", "VALIDATED"), "VALIDATING", _TOKEN),
    Rule("validated", ("VALIDATING", "VALIDATED"), "VALIDATED", _TOKEN),
    Rule("reject", ("VALIDATING",), "REJECTED", _TOKEN),
    Rule("finalize", ("VALIDATED",), "FINALIZED", _TOKEN),
    Rule(
        "retire",
        ("FAILED", "FINISHED", "VALIDATING", "VALIDATED", "REJECTED", "FINALIZED"),
        "RETIRED",
        _TOKEN,
    ),
    Rule("reset", _ALL, "RESET", Permission.ADMIN),
    Rule("ready", ("RESET",), "CREATED", Permission.ADMIN),
)


def _build_machine() -> Machine:
    machine = Machine(model=None, states=list(STATES), initial=None, auto_transitions=False)
    for rule in RULES:
        for source in rule.sources:
            # dest=None is an internal transition in `transitions`: recorded, state unchanged.
            destination = None if rule.destination == SAME else rule.destination
            machine.add_transition(trigger=rule.event, source=source, dest=destination)
    return machine


MACHINE: Final = _build_machine()
_PERMISSIONS: Final = {rule.event: rule.permission for rule in RULES}


def _next_states() -> dict[tuple[str, str], str]:
    table: dict[tuple[str, str], str] = {}
    for state in STATES:
        for event in MACHINE.get_triggers(state):
            (transition,) = MACHINE.get_transitions(trigger=event, source=state)
            table[(state, event)] = transition.dest if transition.dest is not None else state
    return table


# Read off the machine once: a dict lookup per event instead of a walk through the machine.
_NEXT: Final = _next_states()


@dataclass(frozen=True)
class Decision:
    """The state machine's answer for one (state, event) cell: a value, not an exception."""

    state: str
    event: str
    accepted: bool
    to_state: str
    reason: str

    def __bool__(self) -> bool:
        return self.accepted


def marks_started(to_state: str) -> bool:
    """Whether an entry leading to ``to_state`` starts the job (see ``STARTED_STATE``)."""
    return to_state == STARTED_STATE


def is_event(name: str) -> bool:
    return name in _PERMISSIONS


def is_state(name: str) -> bool:
    return name in STATES


def permission(event: str) -> Permission:
    if not is_event(event):
        raise ValueError(f"unknown event {event!r}")
    return _PERMISSIONS[event]


def decide(state: str, event: str) -> Decision:
    """Whether ``event`` may be applied in ``state``, and the state it leads to."""
    if not is_event(event):
        raise ValueError(f"unknown event {event!r}")
    if not is_state(state):
        raise ValueError(f"unknown state {state!r}")
    destination = _NEXT.get((state, event))
    if destination is not None:
        return Decision(state, event, True, destination, "")
    if event == CREATE_EVENT:
        reason = f"event 'create' is not allowed in state {state}: it is applied only when the job is created"
    else:
        allowed = ", ".join(sources(event))
        reason = f"event '{event}' is not allowed in state {state} (allowed from: {allowed})"
    return Decision(state, event, False, state, reason)


def sources(event: str) -> tuple[str, ...]:
    """The states from which ``event`` is allowed, in table order."""
    return tuple(state for state in STATES if (state, event) in _NEXT)


def transitions() -> Iterator[tuple[str, str, str]]:
    """Every allowed cell as (event, source, destination), the creation event first."""
    yield CREATE_EVENT, "", INITIAL_STATE
    for event in EVENTS:
        for state in sources(event):
            yield event, state, _NEXT[(state, event)]


def mermaid() -> str:
    """A Mermaid state diagram of the machine; the README's diagram is generated from this."""
    edges: dict[tuple[str, str], list[str]] = {}
    for event, source, destination in transitions():
        # reset is drawn as a note: an edge from every state would bury the diagram.
        if event not in (CREATE_EVENT, "reset"):
            label = f"{event} (admin)" if permission(event) is Permission.ADMIN else event
            edges.setdefault((source, destination), []).append(label)
    lines = ["stateDiagram-v2", f"    [*] --> {INITIAL_STATE}: create"]
    lines += [
        f"    {source} --> {destination}: {', '.join(labels)}"
        for (source, destination), labels in edges.items()
    ]
    lines.append("    note right of RESET: reset (admin) is allowed from every state")
    return "\n".join(lines) + "\n"
