"""Caps on the repeated and map fields of every request: one table, checked before a handler runs.

A repeated field is as long as the message lets it be: 300,000 ``states`` in a 300 KB ListJobs request took
23 s in the database and stalled every other call, and CreateJob kept 10,000 sample links. Each repeated
or map field of a request message is declared here, by its full protobuf name, with the most values it may
hold, or with what else bounds it; ``check`` refuses a request past a cap as INVALID_ARGUMENT naming the
field, before any conversion or database work (the request is already decoded: counting is free).

The table lives at the API edge because it is about the wire contract: it is keyed by the descriptors,
and tests/security/test_request_caps.py walks every request type of both services and fails on a repeated
or map field the table does not declare, so a field added later cannot go without one. The numbers are
the service's own rules (the link and component limits it enforces for any caller), read from there.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from dataclasses import dataclass

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.service.events import SOURCES
from pipelinejobs_server.service.feed import MAX_UUIDS
from pipelinejobs_server.service.pipelines import MAX_COMPONENTS
from pipelinejobs_server.service.validation import MAX_LINK_VALUES


@dataclass(frozen=True)
class Cap:
    """At most ``most`` values."""

    most: int
    why: str


@dataclass(frozen=True)
class BoundedByBytes:
    """No count of its own: the byte limit of the data it is part of bounds it (checked by the service)."""

    why: str


_LINKS = Cap(MAX_LINK_VALUES, "per link kind, at creation as in a ListJobs filter")
_STATES = Cap(len(fsm.STATES), "each state once; duplicates are folded")
_DATA = BoundedByBytes("a Struct is data: at most max_job_data_bytes or max_event_data_bytes of JSON")

CAPS: dict[str, Cap | BoundedByBytes] = {
    "pipelinejobs.v1.JobLinks.lab": _LINKS,
    "pipelinejobs.v1.JobLinks.experiment": _LINKS,
    "pipelinejobs.v1.JobLinks.sample": _LINKS,
    "pipelinejobs.v1.ListJobsRequest.states": _STATES,
    "pipelinejobs.v1.WatchJobRequest.until_states": _STATES,
    "pipelinejobs.v1.RegisterPipelineRequest.components": Cap(MAX_COMPONENTS, "a pipeline's components"),
    "pipelinejobs.v1.FeedFilter.pipeline_uuids": Cap(MAX_UUIDS, "pipelines to follow"),
    "pipelinejobs.v1.FeedFilter.events": Cap(len(fsm.EVENTS), "each event once; duplicates are folded"),
    "pipelinejobs.v1.FeedFilter.to_states": _STATES,
    "pipelinejobs.v1.FeedFilter.job_uuids": Cap(MAX_UUIDS, "jobs to follow"),
    "pipelinejobs.v1.FeedFilter.sources": Cap(len(SOURCES), "each source once"),
    "google.protobuf.Struct.fields": _DATA,
    "google.protobuf.ListValue.values": _DATA,
}


class UndeclaredField(LookupError):
    """A repeated or map field of a request has no entry in CAPS."""


@dataclass(frozen=True)
class _Step:
    field: FieldDescriptor
    most: int | None  # the cap of a repeated field; None for a message field with capped fields inside
    inner: tuple[_Step, ...]  # what to check inside each value of a message field


@functools.cache
def _plan(descriptor: Descriptor) -> tuple[_Step, ...]:
    """What to count in a message of this type: the capped fields, and the message fields holding some.

    Fields bounded by bytes are not walked into (a Struct nests without end, and its size is checked).
    """
    steps: list[_Step] = []
    for field in descriptor.fields:
        if field.is_repeated:
            declared = CAPS.get(field.full_name)
            if declared is None:
                raise UndeclaredField(f"{field.full_name} is repeated and has no cap in api/caps.py CAPS")
            if isinstance(declared, BoundedByBytes):
                continue
            inner = _plan(field.message_type) if field.message_type is not None else ()
            steps.append(_Step(field, declared.most, inner))
        elif field.message_type is not None:
            inner = _plan(field.message_type)
            if inner:
                steps.append(_Step(field, None, inner))
    return tuple(steps)


def prepare(descriptors: Iterator[Descriptor]) -> None:
    """Plan every request type now (at server start), so that an undeclared field fails at once."""
    for descriptor in descriptors:
        _plan(descriptor)


def check(request: Message) -> None:
    """Refuse ``request`` if any repeated field, at any depth, holds more values than its cap."""
    _check(request, _plan(request.DESCRIPTOR), "")


def _check(message: Message, steps: tuple[_Step, ...], prefix: str) -> None:
    for step in steps:
        name = prefix + step.field.name
        if step.most is None:
            if message.HasField(step.field.name):
                _check(getattr(message, step.field.name), step.inner, f"{name}.")
            continue
        values = getattr(message, step.field.name)
        if len(values) > step.most:
            raise InvalidArgument(
                f"{name} holds {len(values)} values; at most {step.most} are allowed", field=name
            )
        for value in values if step.inner else ():
            _check(value, step.inner, f"{name}.")
