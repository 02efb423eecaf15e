"""The state machine as an inline SVG, drawn from ``GetStateMachine``, with one job's path on it.

The edges come from the service (the one table in domain/fsm.py, over gRPC), so the picture cannot drift
from the machine. Only the node positions are chosen here, by hand, because a hand-made layout of eleven
states reads far better than any automatic one; a state the layout does not know yet still gets drawn, in
an extra row. An event allowed from every state (``reset``) would add an edge from each node; those edges
are drawn only once the job took one (CSS hides the rest) and the legend says the rest.

Nothing here is markup: ``diagram.html`` renders these shapes through the autoescaping template engine.
Every node and edge carries ``data-*`` attributes so that job.js can move the highlight as events arrive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
from pipelinejobs_client.names import event_name, state_name

GRID_X, GRID_Y = 196, 104
NODE_W, NODE_H = 132, 44  # a box's height, and its width unless the events listed in it need more
LOOP_CHAR_W = 6.0  # a character of the events listed inside a box (10 px), on the wide side
LOOP_PADDING = 10  # between those events and the box's sides
MARGIN_X, MARGIN_Y = 70, 16  # room for the start dot on the left
PAIR_OFFSET = 14  # how far apart two opposite edges between the same states are bent
LABEL_GAP = 6  # between such an edge and its label
# Where a slanted edge's label may sit, from its source (0) to its target (1), in order of preference.
LABEL_SPOTS = (0.5, 0.4, 0.6, 0.3, 0.7, 0.35, 0.65)
BESIDE = 24  # how far to the side of a slanted edge its label goes when no place on it is free
CHAR_W = 6.4  # the width of a label's character at the diagram's font size (11 px), on the wide side
# A label's box as the browser lays it out (getBBox): ascent above the baseline, descent below, and the
# room kept clear around it, so that two labels never touch even in a wider font than measured.
LABEL_ASCENT, LABEL_DESCENT, LABEL_CLEARANCE = 11, 4, 2
# Columns and rows: the happy path left to right on row 1, curation steps around it, ends below.
POSITIONS: dict[str, tuple[int, int]] = {
    "RESET": (0, 0),
    "INDEXING": (2, 0),
    "CREATED": (0, 1),
    "RUNNING": (1, 1),
    "FINISHED": (2, 1),
    "VALIDATING": (3, 1),
    "VALIDATED": (4, 1),
    "FAILED": (1, 2),
    "REJECTED": (4, 2),
    "FINALIZED": (5, 2),
    "RETIRED": (3, 3),
}
START = ""  # the creation event's source: no state


@dataclass(frozen=True)
class Node:
    state: str
    x: float
    y: float
    visited: bool
    current: bool
    stays: bool  # some events keep this state: they are listed inside the box, under its name
    width: float = NODE_W

    height = NODE_H

    @property
    def cx(self) -> float:
        return self.x + self.width / 2

    @property
    def cy(self) -> float:
        return self.y + NODE_H / 2

    @property
    def text_y(self) -> float:
        return self.y + 18 if self.stays else self.cy + 4


@dataclass(frozen=True)
class Edge:
    source: str  # "" for the creation edge
    target: str
    events: tuple[str, ...]
    path: str  # SVG path data
    label_x: float
    label_y: float
    label_anchor: str
    admin: bool  # only an admin key may send these events: drawn dashed
    wildcard: bool  # allowed from every state: shown only when taken
    taken: bool
    here: bool = False  # a loop of the job's current state (its text sits on the filled box)

    @property
    def loop(self) -> bool:
        return self.source == self.target

    @property
    def label(self) -> str:
        return ", ".join(self.events)


@dataclass(frozen=True)
class Diagram:
    width: int
    height: int
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    start_x: float
    start_y: float
    wildcard_events: tuple[str, ...]

    @property
    def current(self) -> str:
        """The job's state now ("" when unknown): the legend's swatch takes its colour."""
        return next((node.state for node in self.nodes if node.current), "")

    @property
    def arrows(self) -> tuple[Edge, ...]:
        """The edges drawn as arrows, under the nodes."""
        return tuple(edge for edge in self.edges if not edge.loop)

    @property
    def loops(self) -> tuple[Edge, ...]:
        """Events that keep the state: written inside the node's box, so drawn over the nodes."""
        return tuple(edge for edge in self.edges if edge.loop)


def _positions(states: Iterable[str]) -> dict[str, tuple[float, float]]:
    """Top-left corner of every state's box; unknown states go to an extra row at the bottom."""
    extra_row = max(row for _, row in POSITIONS.values()) + 1
    placed: dict[str, tuple[float, float]] = {}
    spare = 0
    for state in states:
        column, row = POSITIONS.get(state, (spare, extra_row))
        if state not in POSITIONS:
            spare += 1
        placed[state] = (MARGIN_X + column * GRID_X, MARGIN_Y + row * GRID_Y)
    return placed


def _clip(node: Node, toward_x: float, toward_y: float) -> tuple[float, float]:
    """Where the line from the node's centre toward a point leaves the node's box."""
    dx, dy = toward_x - node.cx, toward_y - node.cy
    if dx == 0 and dy == 0:
        return node.cx, node.cy
    scale = min(
        (node.width / 2) / abs(dx) if dx else math.inf,
        (NODE_H / 2) / abs(dy) if dy else math.inf,
    )
    return node.cx + dx * scale, node.cy + dy * scale


def _between(a: Node, b: Node, bend: float) -> tuple[str, float, float, float, float]:
    """A quadratic curve from box ``a`` to box ``b`` bent ``bend`` px to its left; its midpoint and the
    unit normal pointing to its left."""
    length = math.hypot(b.cx - a.cx, b.cy - a.cy) or 1.0
    nx, ny = (b.cy - a.cy) / length, -(b.cx - a.cx) / length  # unit normal, to the left of a→b
    control_x = (a.cx + b.cx) / 2 + nx * bend * 2
    control_y = (a.cy + b.cy) / 2 + ny * bend * 2
    x1, y1 = _clip(a, control_x, control_y)
    x2, y2 = _clip(b, control_x, control_y)
    mid_x = 0.25 * x1 + 0.5 * control_x + 0.25 * x2
    mid_y = 0.25 * y1 + 0.5 * control_y + 0.25 * y2
    return f"M{x1:.1f},{y1:.1f} Q{control_x:.1f},{control_y:.1f} {x2:.1f},{y2:.1f}", mid_x, mid_y, nx, ny


Spot = tuple[float, float]
Box = tuple[float, float, float, float]  # left, top, right, bottom


def _geometry(
    source: str,
    target: str,
    nodes: dict[str, Node],
    grouped: dict[tuple[str, str], list[job_pb2.Transition]],
    start: Spot,
) -> tuple[str, list[Spot], str]:
    """An edge's path, the places its label may go (best first), and the label's text-anchor."""
    if source == START:
        x2, y2 = _clip(nodes[target], *start)
        return (
            f"M{start[0] + 6:.1f},{start[1]:.1f} L{x2:.1f},{y2:.1f}",
            [((start[0] + x2) / 2, start[1] - 8)],
            "middle",
        )
    if source == target:  # no arrow: the events are listed inside the box (loops drawn around boxes crowd)
        node = nodes[source]
        return "", [(node.cx, node.y + NODE_H - 9)], "middle"
    if (target, source) not in grouped:
        a, b = nodes[source], nodes[target]
        path, x, y, _, ny = _between(a, b, 0.0)
        if abs(ny) > 0.9:  # a level edge: the label sits just above the line, not across it
            return path, [(x, y - 5)], "middle"
        # Slanted edges cross each other: their labels may slide along them to a free place.
        x1, y1 = _clip(a, b.cx, b.cy)
        x2, y2 = _clip(b, a.cx, a.cy)
        along = [(x1 + (x2 - x1) * at, y1 + (y2 - y1) * at) for at in LABEL_SPOTS]
        # Where every place on the line is taken (a short edge among others), beside it.
        beside = [(x + side * BESIDE, y) for side in (1, -1) for x, y in along]
        return path, along + beside, "middle"
    # Two opposite edges: each bends to its own side, and its label sits outside, clear of the other's.
    path, x, y, nx, ny = _between(nodes[source], nodes[target], PAIR_OFFSET)
    x, y = x + nx * LABEL_GAP, y + ny * LABEL_GAP
    if abs(nx) > 0.7:
        return path, [(x, y + 4)], "start" if nx > 0 else "end"
    return path, [(x, y + (9 if ny > 0 else 0))], "middle"  # below a curve, the text hangs from its top


def _label_box(spot: Spot, text: str, anchor: str) -> Box:
    x, y = spot
    width = CHAR_W * len(text)
    left = {"start": x, "end": x - width}.get(anchor, x - width / 2)
    pad = LABEL_CLEARANCE
    return left - pad, y - LABEL_ASCENT - pad, left + width + pad, y + LABEL_DESCENT + pad


def _overlap_area(box: Box, other: Box) -> float:
    return max(0.0, min(box[2], other[2]) - max(box[0], other[0])) * max(
        0.0, min(box[3], other[3]) - max(box[1], other[1])
    )


def _overlaps(box: Box, others: list[Box]) -> bool:
    return any(_overlap_area(box, other) > 0 for other in others)


def _place(spots: list[Spot], text: str, anchor: str, taken: list[Box]) -> Spot:
    """The first spot where the label clears every box placed so far, else the one that overlaps least."""
    for spot in spots:
        if not _overlaps(_label_box(spot, text, anchor), taken):
            return spot
    return min(spots, key=lambda spot: sum(_overlap_area(_label_box(spot, text, anchor), o) for o in taken))


def taken_edges(history: Iterable[job_pb2.HistoryEvent]) -> set[tuple[str, str, str]]:
    """(from state, to state, event) of every entry; the creation entry comes from ``START``."""
    return {
        (state_name(entry.from_state), state_name(entry.to_state), event_name(entry.name))
        for entry in history
    }


Grouped = dict[tuple[str, str], list[job_pb2.Transition]]


def _group(machine: job_service_pb2.GetStateMachineResponse) -> tuple[Grouped, tuple[str, ...]]:
    """Transitions by (source, target), and the events allowed from every state."""
    grouped: Grouped = {}
    sources_of: dict[str, set[str]] = {}
    for transition in machine.transitions:
        key = (state_name(transition.source), state_name(transition.destination))
        grouped.setdefault(key, []).append(transition)
        sources_of.setdefault(event_name(transition.event), set()).add(key[0])
    states = {state_name(value) for value in machine.states}
    wildcards = tuple(sorted(event for event, sources in sources_of.items() if sources >= states))
    return grouped, wildcards


def _events(transitions: list[job_pb2.Transition]) -> tuple[str, ...]:
    return tuple(event_name(t.event) for t in transitions)


def _label_spots(
    grouped: Grouped, geometry: dict[tuple[str, str], tuple[str, list[Spot], str]], nodes: dict[str, Node]
) -> dict[tuple[str, str], Spot]:
    """Each edge's label place: fixed ones first, then the sliding ones clear of nodes and other labels.

    Loops' labels sit inside their boxes, and hidden (wildcard) edges' labels take no room.
    """
    occupied: list[Box] = [(n.x, n.y, n.x + n.width, n.y + NODE_H) for n in nodes.values()]
    spots: dict[tuple[str, str], Spot] = {}
    for key in sorted(grouped, key=lambda key: len(geometry[key][1])):
        _, candidates, anchor = geometry[key]
        if key[0] == key[1]:
            spots[key] = candidates[0]
            continue
        text = ", ".join(_events(grouped[key]))
        spots[key] = _place(candidates, text, anchor, occupied)
        occupied.append(_label_box(spots[key], text, anchor))
    return spots


def build(
    machine: job_service_pb2.GetStateMachineResponse, history: Iterable[job_pb2.HistoryEvent], current: str
) -> Diagram:
    """The diagram of ``machine`` with the path of a job whose history is ``history``."""
    entries = list(history)
    taken = taken_edges(entries)
    visited = {state_name(entry.to_state) for entry in entries}
    grouped, wildcards = _group(machine)
    stays = {
        source
        for (source, target), transitions in grouped.items()
        if source == target and not all(event in wildcards for event in _events(transitions))
    }
    nodes = {}
    for state, (x, y) in _positions(state_name(value) for value in machine.states).items():
        # A box as wide as the events listed in it need, centred where the grid puts a box.
        listed = [_events(ts) for (source, target), ts in grouped.items() if source == target == state]
        text = "↻ " + ", ".join(listed[0]) if listed and state in stays else ""
        width = max(NODE_W, math.ceil(LOOP_CHAR_W * len(text)) + 2 * LOOP_PADDING)
        nodes[state] = Node(
            state,
            x - (width - NODE_W) / 2,
            y,
            visited=state in visited,
            current=state == current,
            stays=state in stays,
            width=width,
        )
    first = nodes[state_name(machine.initial_state)]
    start_x, start_y = first.x - 44, first.cy
    geometry = {key: _geometry(*key, nodes, grouped, (start_x, start_y)) for key in grouped}
    spots = _label_spots(grouped, geometry, nodes)
    edges = []
    for (source, target), transitions in grouped.items():
        events = _events(transitions)
        path, _, anchor = geometry[(source, target)]
        label_x, label_y = spots[(source, target)]
        edges.append(
            Edge(
                source=source,
                target=target,
                events=events,
                path=path,
                label_x=round(label_x, 1),
                label_y=round(label_y, 1),
                label_anchor=anchor,
                admin=all(t.permission == job_pb2.PERMISSION_ADMIN for t in transitions),
                wildcard=all(event in wildcards for event in events),
                taken=any((source, target, event) in taken for event in events),
                here=source == target == current,
            )
        )
    width = int(max(n.x + n.width for n in nodes.values()) + 16)
    height = int(max(n.y for n in nodes.values()) + NODE_H + 24)
    return Diagram(width, height, tuple(nodes.values()), tuple(edges), start_x, start_y, wildcards)
