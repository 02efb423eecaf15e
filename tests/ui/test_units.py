"""The dashboard's pure parts, without a server: the diagram drawn from the state machine, the table's
filters and links, and the SSE framing."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from starlette.datastructures import QueryParams

from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.names import event_value, state_value
from pipelinejobs_server.api.jobs import state_machine
from pipelinejobs_server.domain import errors, fsm
from pipelinejobs_server.ui import DashboardSettings, access, diagram, live
from pipelinejobs_server.ui.filters import STATES, JobQuery


def entry(seq: int, event: str, source: str, target: str, **data: Any) -> job_pb2.HistoryEvent:
    message = job_pb2.HistoryEvent(
        seq=seq,
        uuid=f"00000000-0000-4000-8000-{seq:012d}",
        name=event_value(event),
        from_state=state_value(source) if source else job_pb2.JOB_STATE_UNSPECIFIED,
        to_state=state_value(target),
        timestamp=Timestamp(seconds=1_700_000_000 + seq),
    )
    message.data.update(data)
    return message


HISTORY = [
    entry(1, "create", "", "CREATED"),
    entry(2, "run", "CREATED", "RUNNING"),
    entry(3, "update", "RUNNING", "RUNNING", progress=0.5),
    entry(4, "finish", "RUNNING", "FINISHED"),
]


def test_every_transition_of_the_machine_is_on_exactly_one_edge() -> None:
    drawn = diagram.build(state_machine(), [], "")
    cells = [(edge.source, edge.target, event) for edge in drawn.edges for event in edge.events]
    assert sorted(cells) == sorted((source, target, event) for event, source, target in fsm.transitions())
    assert {node.state for node in drawn.nodes} == set(fsm.STATES)
    assert drawn.wildcard_events == ("reset",)  # drawn only once taken, and said in the legend


def test_the_path_of_a_job_is_highlighted() -> None:
    drawn = diagram.build(state_machine(), HISTORY, "FINISHED")
    taken = {(edge.source, edge.target) for edge in drawn.edges if edge.taken}
    assert taken == {("", "CREATED"), ("CREATED", "RUNNING"), ("RUNNING", "RUNNING"), ("RUNNING", "FINISHED")}
    assert [node.state for node in drawn.nodes if node.current] == ["FINISHED"]
    assert {node.state for node in drawn.nodes if node.visited} == {"CREATED", "RUNNING", "FINISHED"}
    assert [edge.source for edge in drawn.loops if edge.here] == ["FINISHED"]


def test_a_reset_is_drawn_once_taken() -> None:
    history = [*HISTORY, entry(5, "reset", "FINISHED", "RESET"), entry(6, "ready", "RESET", "CREATED")]
    drawn = diagram.build(state_machine(), history, "CREATED")
    resets = [edge for edge in drawn.edges if edge.events == ("reset",)]
    assert len(resets) == len(fsm.STATES)
    assert all(edge.wildcard and edge.admin for edge in resets)
    assert [(edge.source, edge.taken) for edge in resets if edge.taken] == [("FINISHED", True)]


def test_labels_and_boxes_do_not_overlap() -> None:
    drawn = diagram.build(state_machine(), [], "")
    boxes = [(n.x, n.y, n.x + n.width, n.y + n.height) for n in drawn.nodes]
    for edge in drawn.arrows:
        if edge.wildcard:
            continue  # hidden until taken
        box = diagram._label_box((edge.label_x, edge.label_y), edge.label, edge.label_anchor)
        assert not diagram._overlaps(box, boxes), edge
        boxes.append(box)
    for node in drawn.nodes:
        assert node.x >= 0
        assert node.x + node.width <= drawn.width
        assert node.y >= 0
        assert node.y + node.height <= drawn.height


def test_a_state_the_layout_does_not_know_still_gets_a_place() -> None:
    positions = diagram._positions(["CREATED", "NEW_ONE", "OTHER"])
    assert (
        positions["NEW_ONE"][1]
        == positions["OTHER"][1]
        > max(y for _, y in positions.values() if y != positions["OTHER"][1])
    )
    assert positions["NEW_ONE"][0] != positions["OTHER"][0]


def test_filters_read_back_from_their_own_links() -> None:
    query = JobQuery.from_params(
        QueryParams(
            "pipeline=p&state=running&state=FAILED&experiment=Yeast-Gates&from=2026-05-01T09:30&size=50"
        )
    )
    assert query.states == ("RUNNING", "FAILED")
    assert query.created_from == datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
    assert query.list_arguments()["experiment"] == ["Yeast-Gates"]
    assert query.list_arguments(states=("CREATED",))["states"] == ("CREATED",)
    assert JobQuery.from_params(QueryParams(query.href()[1:])) == query
    only_failed = JobQuery.from_params(QueryParams(query.href(states=("FAILED",))[1:]))
    assert only_failed.states == ("FAILED",)
    assert only_failed.experiment == "Yeast-Gates"


def test_lab_and_sample_filters_reach_the_listing_and_their_links() -> None:
    query = JobQuery.from_params(
        QueryParams("lab=UW_BIOFAB&sample=sample.uw_biofab.133737%2FA2&state=RUNNING")
    )
    arguments = query.list_arguments()
    assert (arguments["lab"], arguments["sample"]) == (["UW_BIOFAB"], ["sample.uw_biofab.133737/A2"])
    assert arguments["experiment"] == []
    assert JobQuery.from_params(QueryParams(query.href()[1:])) == query
    paged = JobQuery.from_params(QueryParams(query.next_href("token-2")[1:]))
    assert (paged.lab, paged.sample, paged.page) == ("UW_BIOFAB", "sample.uw_biofab.133737/A2", "token-2")
    assert JobQuery.from_params(QueryParams("")).list_arguments()["lab"] == []


def test_paging_links_go_forward_and_back() -> None:
    first = JobQuery.from_params(QueryParams("state=RUNNING"))
    assert first.previous_href() is None
    assert first.number == 1
    second = JobQuery.from_params(QueryParams(first.next_href("token-2")[1:]))
    assert (second.page, second.number) == ("token-2", 2)
    third = JobQuery.from_params(QueryParams(second.next_href("token-3")[1:]))
    assert (third.page, third.number) == ("token-3", 3)
    back = JobQuery.from_params(QueryParams((third.previous_href() or "")[1:]))
    assert (back.page, back.number, back.states) == ("token-2", 2, ("RUNNING",))
    home = JobQuery.from_params(QueryParams((back.previous_href() or "")[1:]))
    assert (home.page, home.number) == ("", 1)


@pytest.mark.parametrize(
    "query",
    [
        "state=SLEEPING",
        "from=tomorrow",
        "to=2026-13-01T00:00",
        "size=1000",
        f"experiment={'x' * 300}",
        f"sample={'x' * 300}",
    ],
)
def test_a_bad_filter_is_an_invalid_argument(query: str) -> None:
    with pytest.raises(errors.InvalidArgument):
        JobQuery.from_params(QueryParams(query))


def test_states_are_the_machine_states() -> None:
    assert set(STATES) == set(fsm.STATES)


def test_an_sse_message_stays_one_message_whatever_the_data() -> None:
    text = live.entry_message(entry(7, "update", "RUNNING", "RUNNING", note="two\nlines\n\ndata: fake"))
    head, blank, tail = text.partition("\n\n")
    assert tail == ""
    assert blank == "\n\n"
    lines = head.split("\n")
    assert lines[:2] == ["id: 7", "event: entry"]
    assert len(lines) == 3
    assert lines[2].startswith("data: ")
    assert json.loads(lines[2].removeprefix("data: "))["data"]["note"] == "two\nlines\n\ndata: fake"


def test_the_reader_pool_keeps_one_client_per_key_and_closes_the_evicted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(access, "EVICTED_CLOSE_AFTER_S", 0.01)

    async def scenario() -> None:
        # Channels connect lazily: nothing needs to listen at this address.
        readers = access.Readers(DashboardSettings(server="127.0.0.1:9"))
        first = readers.client("key-0")
        assert readers.client("key-0") is first
        for n in range(1, access.POOL_SIZE + 1):
            readers.client(f"key-{n}")
        assert readers.client("key-0") is not first  # the least recently used one went
        await asyncio.sleep(0.05)
        assert readers._evicted == {}  # closed after its delay
        await readers.close()

    asyncio.run(scenario())
