"""The state machine (domain/fsm.py) against the table of DESIGN section 3.

The expected table is DESIGN.md's own, copied and parsed in tests/design_fsm.py, never read off
``fsm.RULES``: the matrix over all 11 states x 15 events is what catches a drift between the two.
"""

from __future__ import annotations

import pytest
import transitions

from pipelinejobs_server.domain import fsm
from tests.design_fsm import EVENTS, EXPECTED, SENDERS, STATES

WHO = {
    "service credential": fsm.Permission.SERVICE,
    "job token": fsm.Permission.JOB_TOKEN,
    "admin credential only": fsm.Permission.ADMIN,
}
EXPECTED_PERMISSION = {event: WHO[sender] for event, sender in SENDERS.items()}


def _cell_id(state: str, event: str) -> str:
    return f"{state} --{event}--> {EXPECTED.get((state, event), 'refused')}"


MATRIX = [
    pytest.param(state, event, EXPECTED.get((state, event)), id=_cell_id(state, event))
    for state in STATES
    for event in EVENTS
]
REFUSED = [
    pytest.param(state, event, id=_cell_id(state, event))
    for state in STATES
    for event in EVENTS
    if (state, event) not in EXPECTED
]


def test_design_table_was_transcribed_completely() -> None:
    # Guards the parser: a mangled copy would make the matrix below vacuous.
    assert len(STATES) == 11
    assert len(EVENTS) == 15
    assert set(EXPECTED_PERMISSION) == set(EVENTS)
    assert len(EXPECTED) == 42


def test_states_and_events_are_the_designs() -> None:
    assert fsm.STATES == STATES
    assert fsm.EVENTS == EVENTS
    assert fsm.INITIAL_STATE == "CREATED"


@pytest.mark.parametrize(("state", "event", "destination"), MATRIX)
def test_decide_matrix(state: str, event: str, destination: str | None) -> None:
    decision = fsm.decide(state, event)
    assert (decision.state, decision.event) == (state, event)
    if destination is None:
        assert not decision.accepted
        assert not decision
        # A refusal changes nothing, so the "to" state is the current one.
        assert decision.to_state == state
        assert decision.reason
    else:
        assert decision.accepted
        assert decision
        assert decision.to_state == destination
        assert decision.reason == ""


@pytest.mark.parametrize(("state", "event"), REFUSED)
def test_refusal_reason_names_state_and_event(state: str, event: str) -> None:
    reason = fsm.decide(state, event).reason
    # The state cannot be in the "allowed from" list of a refused cell, so finding it means it is named.
    assert state in reason
    assert event in reason


def test_create_is_refused_for_existing_jobs() -> None:
    # Creation is a separate code path; no existing state may be "re-created" by an event.
    for state in STATES:
        decision = fsm.decide(state, "create")
        assert not decision.accepted
        assert "create" in decision.reason


@pytest.mark.parametrize("event", EVENTS)
def test_permission(event: str) -> None:
    assert fsm.permission(event) is EXPECTED_PERMISSION[event]


def test_permission_spot_checks() -> None:
    # Stated separately from the parsed table, so a parser slip cannot hide an admin-only event.
    assert fsm.permission("reset") is fsm.Permission.ADMIN
    assert fsm.permission("ready") is fsm.Permission.ADMIN
    assert fsm.permission("create") is fsm.Permission.SERVICE
    assert fsm.permission("run") is fsm.Permission.JOB_TOKEN


@pytest.mark.parametrize("event", ["", "bogus", "RUN", "Run", "cancel", " run"])
def test_unknown_event_raises_value_error(event: str) -> None:
    assert not fsm.is_event(event)
    with pytest.raises(ValueError, match="unknown event"):
        fsm.decide("CREATED", event)


def test_is_state_and_is_event() -> None:
    assert all(fsm.is_state(state) for state in STATES)
    assert all(fsm.is_event(event) for event in EVENTS)
    assert not fsm.is_state("created")
    assert not fsm.is_state("CANCELLED")


@pytest.mark.parametrize("event", EVENTS)
def test_sources_follow_state_order(event: str) -> None:
    expected = tuple(state for state in STATES if (state, event) in EXPECTED)
    assert fsm.sources(event) == expected


def test_transitions_lists_every_allowed_cell_once() -> None:
    cells = list(fsm.transitions())
    # 42 (state, event) cells plus the creation edge.
    assert len(cells) == 43
    assert cells[0] == ("create", "", "CREATED")
    assert len(set(cells)) == 43
    assert {(source, event): to for event, source, to in cells[1:]} == EXPECTED


def test_mermaid_mentions_every_state_and_event() -> None:
    diagram = fsm.mermaid()
    assert diagram.startswith("stateDiagram-v2\n")
    for state in STATES:
        assert state in diagram
    for event in EVENTS:
        assert event in diagram


def test_one_shared_machine_without_models() -> None:
    machine = fsm.MACHINE
    assert isinstance(machine, transitions.Machine)
    # model=None: the machine holds no job objects; jobs are plain records in the store.
    assert machine.models == []
    assert machine.auto_transitions is False
    assert list(machine.states) == list(STATES)
    # Every (state, event) cell except creation is one transition of that machine.
    assert len(machine.get_transitions()) == 42


def test_decide_never_builds_a_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    # DESIGN 3: one module-level machine, never one per job or per request.
    def forbidden(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Machine was constructed while deciding")

    monkeypatch.setattr(transitions.core.Machine, "__init__", forbidden)
    for state in STATES:
        for event in EVENTS:
            fsm.decide(state, event)
