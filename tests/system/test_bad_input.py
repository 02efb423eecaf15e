"""DESIGN 6.5 at every RPC: arbitrary field values, invalid UUIDs and enum values, huge and deeply nested
``Struct``s. Each call gets OK or a precise error, the server stays up, and a refused call leaves the
database as it was.

Requests are generated from the message descriptors (strategies.py), so every field of
every RPC is reached, including RPCs added later; the metadata carries a client key, an admin key, none,
or garbage. Then each uuid field, each enum field and each ``Struct`` field of a valid request is made
wrong on its own, and the error must name that field.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, message, text_format
from google.protobuf.message import DecodeError
from hypothesis import given, note
from hypothesis import strategies as st

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2, pipeline_pb2
from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.identity import is_uuid
from pipelinejobs_server.settings import Limits
from tests.support import ADMIN, CLIENT
from tests.system.bad_input import (
    BOUNDED,
    METHODS,
    Snapshot,
    Target,
    assert_precise,
    assert_serving,
    assert_unchanged,
    method_path,
    request_class,
)
from tests.system.strategies import (
    STRUCT,
    TEXT,
    Field,
    Metadata,
    aimed_strings,
    build,
    credentials,
    json_values,
    messages,
    nested,
)

# A server process of its own, like the other multi-process tests.
pytestmark = [pytest.mark.slow, pytest.mark.fuzz]

WATCH_S = 0.3  # a valid WatchJob stays open: it ends at this deadline, which is its success
REFUSAL_S = 10.0


def ids(method: descriptor.MethodDescriptor) -> str:
    return f"{method.containing_service.name}.{method.name}"


# -- calling ---------------------------------------------------------------------------------------------


def invoke(
    channel: grpc.Channel,
    method: descriptor.MethodDescriptor,
    request: message.Message,
    metadata: Metadata,
    stream_s: float = WATCH_S,
) -> grpc.RpcError | None:
    """Call any RPC with a built request; the error, or None when it succeeded.

    A stream still open after ``stream_s`` was accepted. Tests that expect a refusal pass a long one,
    so that a refusal slowed down by a busy machine is not taken for an accepted stream.
    """
    serialize: Callable[[Any], bytes] = type(request).SerializeToString
    try:
        if method.server_streaming:
            stream = channel.unary_stream(method_path(method), serialize, None)
            for _ in stream(request, metadata=metadata, timeout=stream_s):
                pass
        else:
            channel.unary_unary(method_path(method), serialize, None)(request, metadata=metadata, timeout=10)
    except grpc.RpcError as error:
        if method.server_streaming and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return None  # the stream was accepted and stayed open until the caller's deadline
        return error
    return None


def decodable(request: message.Message) -> bool:
    """Whether protobuf can read the request back (it refuses messages nested past its depth limit)."""
    try:
        type(request).FromString(request.SerializeToString())
    except DecodeError:
        return False
    return True


def describe(request: message.Message) -> str:
    """The request as text for a failure report (cut short), when protobuf can print it at all."""
    if not decodable(request):
        return f"<{request.ByteSize()} bytes, nested past protobuf's depth limit>"
    return text_format.MessageToString(request, as_one_line=True)[:2000]


def refused_cleanly(
    channel: grpc.Channel,
    snapshot: Snapshot,
    method: descriptor.MethodDescriptor,
    request: message.Message,
    metadata: Metadata,
    stream_s: float = WATCH_S,
) -> grpc.RpcError | None:
    """Call, and if the call was refused, check the error is precise and the database untouched."""
    note(f"{method.name}({describe(request)}) metadata={metadata}")
    before = snapshot.take()
    error = invoke(channel, method, request, metadata, stream_s)
    if error is not None:
        assert_unchanged(before, snapshot.take(), assert_precise(error))
    return error


# -- properties ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS, ids=ids)
def test_arbitrary_field_values_get_a_precise_answer(
    target: Target,
    snapshot: Snapshot,
    method: descriptor.MethodDescriptor,
) -> None:
    outcomes: dict[str, int] = {}

    @BOUNDED
    @given(request=messages(method.input_type, target), metadata=credentials())
    def fuzz(request: message.Message, metadata: Metadata) -> None:
        error = refused_cleanly(channel, snapshot, method, request, metadata)
        outcome = "OK" if error is None else error.code().name
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    with grpc.insecure_channel(target.server.address) as channel:
        fuzz()
    assert_serving(target)
    assert sum(outcomes.values()) >= 40, outcomes


# A valid request of every RPC, field by field; each test below changes one field of it.
def base_request(method: descriptor.MethodDescriptor, target: Target) -> message.Message:
    cancel = method.name == "CancelJob"
    values: dict[str, Any] = {
        "uuid": target.pipeline if method.containing_service.name == "PipelineService" else target.job,
        "job_uuid": target.job,
        "pipeline_uuid": target.pipeline,
        "token": target.fresh_token if cancel else target.token,
        "event": "unmapped-status",
        "reason": "UNMAPPED_STATUS",
        "name": "bad-input-base",
        "links": job_pb2.JobLinks(lab=["bad-input-lab"]),
        "components": [pipeline_pb2.PipelineComponent(id="bad-input", version="1")],
        # RevokeTokens: a well-formed id that matches no token, so the valid request revokes nothing.
        "token_id": "0" * 16,
    }
    if cancel:
        values["uuid"] = target.fresh
    cls = request_class(method)
    fields = cls.DESCRIPTOR.fields_by_name
    chosen = {name: value for name, value in values.items() if name in fields}
    if "event" in fields and fields["event"].type == Field.TYPE_ENUM:
        chosen["event"] = job_pb2.JOB_EVENT_UPDATE
    return build(cls, chosen)


UUID_FIELDS = [
    (method, field)
    for method in METHODS
    for field in method.input_type.fields
    if field.type == Field.TYPE_STRING and field.name.endswith("uuid")
]
ENUM_FIELDS = [
    (method, field)
    for method in METHODS
    for field in method.input_type.fields
    if field.type == Field.TYPE_ENUM
]


def test_every_base_request_is_valid(target: Target) -> None:
    # Otherwise the tests below would prove nothing: the one changed field must be the only fault.
    with grpc.insecure_channel(target.server.address) as channel:
        for method in METHODS:
            if method.name != "CancelJob":  # it would delete the job the others aim at
                error = invoke(channel, method, base_request(method, target), ADMIN)
                assert error is None, (method.name, error)


@pytest.mark.parametrize(("method", "field"), UUID_FIELDS, ids=[f"{ids(m)}.{f.name}" for m, f in UUID_FIELDS])
def test_an_invalid_uuid_is_invalid_argument_naming_the_field(
    target: Target,
    snapshot: Snapshot,
    method: descriptor.MethodDescriptor,
    field: Field,
) -> None:
    @BOUNDED
    @given(value=st.one_of(TEXT, aimed_strings(target)).filter(lambda text: bool(text) and not is_uuid(text)))
    def fuzz(value: str) -> None:
        request = base_request(method, target)
        setattr(request, field.name, value)
        error = refused_cleanly(channel, snapshot, method, request, CLIENT, REFUSAL_S)
        assert error is not None, value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert assert_precise(error).metadata["field"] == field.name

    with grpc.insecure_channel(target.server.address) as channel:
        fuzz()


@pytest.mark.parametrize(("method", "field"), ENUM_FIELDS, ids=[f"{ids(m)}.{f.name}" for m, f in ENUM_FIELDS])
def test_an_undefined_enum_value_is_invalid_argument_naming_the_field(
    target: Target,
    snapshot: Snapshot,
    method: descriptor.MethodDescriptor,
    field: Field,
) -> None:
    assert field.enum_type is not None
    defined = {value.number for value in field.enum_type.values}

    @BOUNDED
    @given(value=st.integers(-(2**31), 2**31 - 1).filter(lambda number: number not in defined))
    def fuzz(value: int) -> None:
        request = base_request(method, target)
        if field.is_repeated:
            getattr(request, field.name).append(value)
        else:
            setattr(request, field.name, value)
        error = refused_cleanly(channel, snapshot, method, request, CLIENT, REFUSAL_S)
        assert error is not None, value
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert assert_precise(error).metadata["field"] == field.name

    with grpc.insecure_channel(target.server.address) as channel:
        fuzz()


STRUCT_FIELDS = [
    (method, field)
    for method in METHODS
    for field in method.input_type.fields
    if field.message_type is not None and field.message_type.full_name == STRUCT
]


@pytest.mark.parametrize(
    ("method", "field"), STRUCT_FIELDS, ids=[f"{ids(m)}.{f.name}" for m, f in STRUCT_FIELDS]
)
def test_huge_and_deep_structs_are_refused_by_the_limits(
    target: Target,
    snapshot: Snapshot,
    method: descriptor.MethodDescriptor,
    field: Field,
) -> None:
    limits = Limits()
    per_event = method.name in ("SendEvent", "RejectEvent")
    max_bytes = limits.max_event_data_bytes if per_event else limits.max_job_data_bytes

    @BOUNDED
    @given(
        depth=st.integers(1, 150),
        size=st.integers(0, max_bytes + 4096) | st.sampled_from([max_bytes - 20, max_bytes - 10, max_bytes]),
    )
    def fuzz(depth: int, size: int) -> None:
        value = nested(depth)
        value["blob"] = "x" * size
        request = base_request(method, target)
        getattr(request, field.name).update(value)
        error = refused_cleanly(channel, snapshot, method, request, ADMIN)
        encoded = len(canonical_json(value).encode("utf-8"))
        if depth > limits.max_data_depth:
            # Past protobuf's own depth limit the request cannot even be decoded: then the request as a
            # whole is named, since no field of it can be read.
            named = field.name if decodable(request) else "request"
            assert error is not None, depth
            assert (error.code(), error_field(error)) == (grpc.StatusCode.INVALID_ARGUMENT, named)
        elif encoded > max_bytes:
            assert error is not None, encoded
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert assert_precise(error).reason == "DATA_TOO_LARGE"
        else:
            assert error is None, (depth, encoded, error)

    with grpc.insecure_channel(target.server.address) as channel:
        fuzz()
    assert_serving(target)


def error_field(error: grpc.RpcError) -> str:
    return str(assert_precise(error).metadata.get("field", ""))


def test_random_events_on_a_real_job_are_applied_or_refused_precisely(
    target: Target, snapshot: Snapshot
) -> None:
    # The state-changing path with arbitrary payloads: every event name, data, keys that repeat (so
    # replays and key conflicts happen), sources, and the job's token or an admin key.
    job_service = next(method for method in METHODS if method.name == "SendEvent")
    outcomes: dict[str, int] = {}

    @BOUNDED
    @given(
        event=st.sampled_from([value.number for value in job_pb2.JobEvent.DESCRIPTOR.values]),
        data=st.dictionaries(TEXT, json_values(), max_size=4),
        key=st.sampled_from(["", "k1", "k2", "k3"]),
        source=st.integers(-1, 4),
        admin=st.booleans(),
    )
    def fuzz(event: int, data: dict[str, Any], key: str, source: int, admin: bool) -> None:
        request = job_service_pb2.SendEventRequest(
            uuid=target.job,
            event=event,  # type: ignore[arg-type]
            token="" if admin else target.token,
            idempotency_key=key,
            source=source,  # type: ignore[arg-type]
        )
        request.data.update(data)
        error = refused_cleanly(channel, snapshot, job_service, request, ADMIN if admin else ())
        outcome = "OK" if error is None else assert_precise(error).reason
        outcomes[outcome] = outcomes.get(outcome, 0) + 1

    with grpc.insecure_channel(target.server.address) as channel:
        fuzz()
    assert outcomes.get("OK", 0) > 0, outcomes
    assert outcomes.get("INVALID_TRANSITION", 0) > 0, outcomes
    assert_serving(target)
