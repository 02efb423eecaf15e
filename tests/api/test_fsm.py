"""Every (state, event) cell of the state machine, checked through the real gRPC API.

The expected table is DESIGN.md section 3's, transcribed in tests/design_fsm.py, not read from
domain/fsm.py, so a drift between the design and the server's table fails here. One server serves the
whole module: each cell gets a fresh job (distinct ``data``), driven to its state along a legal path,
then the event.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

import grpc
import pytest

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests import servers, support
from tests.design_fsm import ADMIN_EVENTS, EVENTS, STATES, destination
from tests.support import ADMIN, CLIENT, Stubs, create_job, error_info, event_enum, history, send, state_name

# A legal way into each state from CREATED; RESET is reached with an admin "reset".
PATHS: Final[dict[str, tuple[str, ...]]] = {
    "CREATED": (),
    "RUNNING": ("run",),
    "FAILED": ("run", "fail"),
    "FINISHED": ("run", "finish"),
    "INDEXING": ("run", "finish", "index"),
    "VALIDATING": ("run", "finish", "validate"),
    "VALIDATED": ("run", "finish", "validate", "validated"),
    "REJECTED": ("run", "finish", "validate", "reject"),
    "FINALIZED": ("run", "finish", "validate", "validated", "finalize"),
    "RETIRED": ("run", "finish", "retire"),
    "RESET": ("reset",),
}


@dataclass(frozen=True)
class Cell:
    state: str
    event: str
    destination: str | None

    @property
    def id(self) -> str:
        return f"{self.state} --{self.event}--> {self.destination or 'refused'}"


CELLS: Final = [Cell(state, event, destination(state, event)) for state in STATES for event in EVENTS]


@dataclass(frozen=True)
class Api:
    stubs: Stubs
    pipeline: str


@pytest.fixture(scope="module")
def machine_api(embedded: EmbeddedDatabase) -> Iterator[Api]:
    # One server and database for all 165 cells: a server per cell would dominate the run time.
    settings = servers.test_settings(embedded.uri, f"test_fsm_{uuid.uuid4().hex[:12]}")
    thread = servers.ServerThread(settings).start()
    try:
        with support.stubs(thread.address) as s:
            yield Api(s, support.register_pipeline(s, name="fsm-matrix", version="1.0.0"))
    finally:
        thread.stop()


def metadata_for(event: str) -> tuple[tuple[str, str], ...]:
    return ADMIN if event in ADMIN_EVENTS else ()


def get_job(s: Stubs, job_uuid: str) -> job_pb2.Job:
    reply = s.jobs.GetJob(job_service_pb2.GetJobRequest(uuid=job_uuid), metadata=CLIENT)
    job: job_pb2.Job = reply.job
    return job


def rejected(s: Stubs, job_uuid: str) -> list[job_pb2.RejectedEvent]:
    reply = s.jobs.ListRejectedEvents(
        job_service_pb2.ListRejectedEventsRequest(job_uuid=job_uuid, page_size=100), metadata=CLIENT
    )
    return list(reply.events)


def job_in(api: Api, state: str, label: str) -> tuple[str, str, int]:
    """A fresh job driven to ``state``: its uuid, token and seq."""
    created = create_job(api.stubs, api.pipeline, {"cell": label})
    assert created.created, f"job for {label} already existed"
    job_uuid, token, seq = created.job.uuid, created.token, created.job.seq
    for event in PATHS[state]:
        seq = send(api.stubs, job_uuid, event, token=token, metadata=metadata_for(event)).job.seq
    job = get_job(api.stubs, job_uuid)
    assert state_name(job.state) == state
    assert job.seq == seq == 1 + len(PATHS[state])
    return job_uuid, token, seq


def test_matrix_covers_every_cell() -> None:
    assert len(CELLS) == 165
    assert sum(cell.destination is not None for cell in CELLS) == 42
    assert set(PATHS) == set(STATES)


@pytest.mark.parametrize("cell", CELLS, ids=[cell.id for cell in CELLS])
def test_cell(machine_api: Api, cell: Cell) -> None:
    s = machine_api.stubs
    job_uuid, token, seq = job_in(machine_api, cell.state, f"{cell.state}-{cell.event}")

    if cell.destination is not None:
        reply = send(s, job_uuid, cell.event, token=token, metadata=metadata_for(cell.event))
        assert state_name(reply.job.state) == cell.destination
        assert reply.job.seq == seq + 1
        assert not reply.replayed
        last = history(s, job_uuid)[-1]
        assert last.seq == seq + 1
        assert last.name == event_enum(cell.event)
        assert state_name(last.from_state) == cell.state
        assert state_name(last.to_state) == cell.destination
        job = get_job(s, job_uuid)
        assert (state_name(job.state), job.seq) == (cell.destination, seq + 1)
        return

    with pytest.raises(grpc.RpcError) as caught:
        send(s, job_uuid, cell.event, token=token, metadata=metadata_for(cell.event))
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
    info = error_info(caught.value)
    assert info.reason == "INVALID_TRANSITION"
    assert dict(info.metadata) == {"state": cell.state, "event": cell.event}

    job = get_job(s, job_uuid)
    assert (state_name(job.state), job.seq) == (cell.state, seq)
    assert len(history(s, job_uuid)) == seq
    (record,) = rejected(s, job_uuid)
    assert (record.event, state_name(record.state), record.reason) == (
        cell.event,
        cell.state,
        "INVALID_TRANSITION",
    )


def test_get_state_machine_is_the_design_table(machine_api: Api) -> None:
    machine = machine_api.stubs.jobs.GetStateMachine(
        job_service_pb2.GetStateMachineRequest(), metadata=CLIENT
    )
    assert [state_name(state) for state in machine.states] == list(STATES)
    assert [event_enum(event) for event in EVENTS] == list(machine.events)
    assert state_name(machine.initial_state) == "CREATED"

    served = [
        (job_pb2.JobEvent.Name(t.event), state_name(t.source), state_name(t.destination))
        for t in machine.transitions
    ]
    allowed = [("JOB_EVENT_CREATE", "UNSPECIFIED", "CREATED")] + [
        (job_pb2.JobEvent.Name(event_enum(cell.event)), cell.state, cell.destination)
        for cell in CELLS
        if cell.destination is not None
    ]
    assert len(served) == len(set(served)) == 43
    assert set(served) == set(allowed)

    permissions = {job_pb2.JobEvent.Name(t.event): t.permission for t in machine.transitions}
    assert permissions.pop("JOB_EVENT_CREATE") == job_pb2.PERMISSION_SERVICE
    assert permissions.pop("JOB_EVENT_RESET") == job_pb2.PERMISSION_ADMIN
    assert permissions.pop("JOB_EVENT_READY") == job_pb2.PERMISSION_ADMIN
    assert set(permissions.values()) == {job_pb2.PERMISSION_JOB_TOKEN}


@pytest.mark.parametrize(("state", "event"), [("RUNNING", "reset"), ("RESET", "ready")])
def test_admin_events_need_an_admin_key(machine_api: Api, state: str, event: str) -> None:
    s = machine_api.stubs
    job_uuid, token, seq = job_in(machine_api, state, f"admin-only-{state}-{event}")

    with pytest.raises(grpc.RpcError) as caught:
        send(s, job_uuid, event, token=token, metadata=CLIENT)
    error: grpc.Call = caught.value  # type: ignore[assignment]
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error_info(caught.value).reason == "ADMIN_REQUIRED"

    job = get_job(s, job_uuid)
    assert (state_name(job.state), job.seq) == (state, seq)
    assert len(history(s, job_uuid)) == seq
