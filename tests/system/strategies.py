"""Hypothesis strategies for the bad-input suite: any request of any RPC, built from its descriptor.

Strings, tokens and keys are half random and half aimed at real objects of a ``Target`` (the uuid of a
running job, its token, a pipeline) or near misses of them, so that generated requests get past the
first check and into the service. ``Struct`` fields get ordinary JSON, JSON nested past every limit, or
JSON larger than any.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor, message, message_factory, timestamp_pb2
from hypothesis import strategies as st

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.service.paging import encode
from tests.support import ADMIN, CLIENT
from tests.system.bad_input import Target

Field = descriptor.FieldDescriptor
Metadata = tuple[tuple[str, str], ...]
STRUCT = "google.protobuf.Struct"
NOWHERE = "00000000-0000-4000-8000-000000000000"  # a valid uuid no job or pipeline has
PRINTABLE = st.characters(min_codepoint=0x20, max_codepoint=0x7E)
# Any text protobuf can carry: everything but the lone surrogates UTF-8 cannot encode.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=60)


def aimed_strings(target: Target) -> st.SearchStrategy[str]:
    """Values that reach past the first check: real ids and tokens, and near misses of them."""
    real = [target.job, target.fresh, target.pipeline, target.token, target.fresh_token, NOWHERE]
    near = [
        target.job.upper(),
        "{" + target.job + "}",
        " " + target.job,
        target.job + "\n",
        target.job.replace("-", ""),
        target.token[:-1],
        "",
        " ",
        "\x00",
        "x" * 5000,
        "run",
        "RUNNING",
        "UNMAPPED_STATUS",
        "üñí©ødé ✓",
        encode(f"events:{target.job}", {"seq": -1}),
        encode(f"events:{target.job}", {"seq": "1"}),
        encode("pipelines", {"t": "not a time", "id": 1}),
        encode("jobs:0000000000000000", {"t": "2026-01-01T00:00:00+00:00", "id": target.job}),
        "bm90IGEgdG9rZW4",
    ]
    return st.sampled_from(real + near)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    scalars = st.none() | st.booleans() | st.floats() | st.integers(-(2**60), 2**60) | TEXT
    return st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
        max_leaves=max_leaves,
    )


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {"leaf": True}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def structs() -> st.SearchStrategy[dict[str, Any]]:
    """The JSON objects a Struct field gets: ordinary, nested past every limit, or larger than any.

    They stay dicts until ``build`` puts them in place with ``Struct.update``: ``CopyFrom`` of a Struct
    nested past protobuf's own depth limit fails in the client, before anything is sent.
    """
    objects = st.dictionaries(TEXT, json_values(), max_size=5)
    deep = st.integers(1, 150).map(nested)
    huge = st.integers(0, 300 * 1024).map(lambda size: {"blob": "x" * size})
    return st.one_of(objects, objects, deep, huge)


def timestamps() -> st.SearchStrategy[timestamp_pb2.Timestamp]:
    seconds = st.integers(-(2**62), 2**62) | st.integers(0, 4 * 10**9)
    nanos = st.integers(0, 999_999_999) | st.integers(-(2**31), 2**31 - 1)
    return st.builds(timestamp_pb2.Timestamp, seconds=seconds, nanos=nanos)


def likely_strings(name: str, target: Target) -> st.SearchStrategy[str] | None:
    """For fields the service checks first, values that pass that check half of the time: otherwise
    nearly every request would stop at the first field and the rest of the service would go unseen."""
    key = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=24)
    likely: dict[str, st.SearchStrategy[str]] = {
        "uuid": st.sampled_from([target.job, target.fresh, target.pipeline]),
        "job_uuid": st.sampled_from([target.job, target.fresh]),
        "pipeline_uuid": st.just(target.pipeline),
        "token": st.sampled_from([target.token, target.fresh_token]),
        "idempotency_key": key,
        "event": st.sampled_from([*fsm.EVENTS, "unmapped-status"]),
        "reason": st.from_regex(r"[A-Z][A-Z0-9_]{0,12}", fullmatch=True),
        "session": st.from_regex(r"[a-z0-9][a-z0-9._-]{0,12}", fullmatch=True),
        "name": key,
        "id": key,
    }
    return likely.get(name)


def scalar_values(field: Field, target: Target) -> st.SearchStrategy[Any]:
    if field.type == Field.TYPE_STRING:
        anything = st.one_of(aimed_strings(target), TEXT, st.text(PRINTABLE, max_size=300))
        likely = likely_strings(field.name, target)
        return anything if likely is None else st.one_of(likely, likely, anything)
    if field.type == Field.TYPE_ENUM:
        assert field.enum_type is not None
        defined = st.sampled_from([value.number for value in field.enum_type.values])
        return st.one_of(defined, defined, st.integers(-(2**31), 2**31 - 1))
    if field.type == Field.TYPE_BOOL:
        return st.booleans()
    if field.type in (Field.TYPE_INT32, Field.TYPE_SINT32, Field.TYPE_SFIXED32):
        return st.integers(-2, 1001) | st.integers(-(2**31), 2**31 - 1)
    if field.type in (Field.TYPE_INT64, Field.TYPE_SINT64, Field.TYPE_SFIXED64):
        return st.integers(-2, 20) | st.integers(-(2**63), 2**63 - 1)
    raise AssertionError(f"no strategy for {field.full_name} (type {field.type}): add one")


def field_values(field: Field, target: Target) -> st.SearchStrategy[Any]:
    if field.message_type is not None:
        single: st.SearchStrategy[Any] = messages(field.message_type, target)
    else:
        single = scalar_values(field, target)
    return st.lists(single, max_size=5) if field.is_repeated else single


def messages(message_type: descriptor.Descriptor, target: Target) -> st.SearchStrategy[Any]:
    """Any message of this type: each field absent or set to an arbitrary value, recursively."""
    if message_type.full_name == STRUCT:
        return structs()
    if message_type.full_name == "google.protobuf.Timestamp":
        return timestamps()
    cls = message_factory.GetMessageClass(message_type)
    # Fields the service checks first are always set (to values that may or may not pass); the rest
    # come and go.
    always = {
        field.name: field_values(field, target)
        for field in message_type.fields
        if likely_strings(field.name, target) is not None
        or field.type == Field.TYPE_ENUM
        or field.name in ("links", "components")
    }
    sometimes = {
        field.name: field_values(field, target) for field in message_type.fields if field.name not in always
    }
    return st.fixed_dictionaries(always, optional=sometimes).map(lambda values: build(cls, values))


def build(cls: type[message.Message], values: dict[str, Any]) -> message.Message:
    built = cls()
    for name, value in values.items():
        field = cls.DESCRIPTOR.fields_by_name[name]
        if field.is_repeated and field.type == Field.TYPE_MESSAGE:
            for item in value:
                getattr(built, name).add().CopyFrom(item)
        elif field.is_repeated:
            getattr(built, name).extend(value)
        elif isinstance(value, dict):
            getattr(built, name).update(value)
        elif field.type == Field.TYPE_MESSAGE:
            getattr(built, name).CopyFrom(value)
        else:
            setattr(built, name, value)
    return built


@st.composite
def credentials(draw: st.DrawFn) -> Metadata:
    """Mostly a real key, so that calls get past authentication; sometimes none, or garbage."""
    kind = draw(st.integers(0, 9))
    if kind < 6:
        return CLIENT
    if kind < 8:
        return ADMIN
    if kind == 8:
        return ()
    garbage = draw(st.text(PRINTABLE, max_size=80))
    header = draw(st.sampled_from(["authorization", "x-api-key"]))
    return ((header, draw(st.sampled_from(["", "Bearer ", "Basic "])) + garbage),)
