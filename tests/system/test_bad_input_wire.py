"""Garbage on the wire (DESIGN 6.5): bytes that are no protobuf message at all, sent as the request of
every RPC through a real HTTP/2 gRPC call, and bytes that are not even HTTP/2, written to the gRPC port
with a plain socket.

The first kind gets OK (some garbage decodes as a valid message) or a precise error, never UNKNOWN or
INTERNAL, and a refused call changes nothing. The second kind is refused by the HTTP/2 layer, which closes
the connection at once. Either way the server stays up and serving, and the database is as it was.
"""

from __future__ import annotations

import socket
import time

import grpc
import pytest
from google.protobuf import descriptor
from hypothesis import given, note
from hypothesis import strategies as st

from pipelinejobs_client.api.v1 import job_pb2, job_service_pb2
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
)

# A server process of its own, like the other multi-process tests.
pytestmark = [pytest.mark.slow, pytest.mark.fuzz]

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"  # what every HTTP/2 connection must begin with
SETTINGS = 0x04  # HTTP/2 frame type


def raw_call(channel: grpc.Channel, method: descriptor.MethodDescriptor, body: bytes) -> grpc.RpcError | None:
    """Send ``body`` as the serialized request, unchecked; None when the call succeeded."""
    identity = None  # no (de)serializers: the bytes go out as they are
    try:
        if method.server_streaming:
            for _ in channel.unary_stream(method_path(method), identity, identity)(
                body, metadata=CLIENT, timeout=0.3
            ):
                pass
        else:
            channel.unary_unary(method_path(method), identity, identity)(body, metadata=ADMIN, timeout=10)
    except grpc.RpcError as error:
        if method.server_streaming and error.code() == grpc.StatusCode.DEADLINE_EXCEEDED:
            return None  # a stream that was accepted stays open until the caller's deadline
        return error
    return None


def bodies(target: Target) -> st.SearchStrategy[bytes]:
    """Random bytes, and real requests cut short, extended or with a byte changed."""
    real = job_service_pb2.SendEventRequest(
        uuid=target.job, token=target.token, event=job_pb2.JOB_EVENT_UPDATE
    ).SerializeToString()

    def flip(data: bytes, at: int, value: int) -> bytes:
        at %= len(data)
        return data[:at] + bytes([value]) + data[at + 1 :]

    return st.one_of(
        st.binary(max_size=512),
        st.integers(0, len(real) - 1).map(lambda end: real[:end]),
        st.binary(min_size=1, max_size=64).map(lambda tail: real + tail),
        st.tuples(st.integers(0, 10_000), st.integers(0, 255)).map(lambda change: flip(real, *change)),
    )


@pytest.mark.parametrize("method", METHODS, ids=lambda method: method.name)
def test_undecodable_request_bytes_get_a_precise_answer(
    target: Target, snapshot: Snapshot, method: descriptor.MethodDescriptor
) -> None:
    @BOUNDED
    @given(body=bodies(target))
    def fuzz(body: bytes) -> None:
        note(f"{method.name} <- {body!r}")
        before = snapshot.take()
        error = raw_call(channel, method, body)
        if error is not None:
            assert_unchanged(before, snapshot.take(), assert_precise(error))

    with grpc.insecure_channel(target.server.address) as channel:
        fuzz()
    assert_serving(target)


def test_a_request_over_the_size_limit_is_resource_exhausted(target: Target) -> None:
    with grpc.insecure_channel(target.server.address) as channel:
        error = raw_call(channel, METHODS[0], b"\x0a" + b"\xff" * (5 * 1024 * 1024))
    assert error is not None
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED  # gRPC's own limit: 4 MiB by default
    assert_serving(target)


def exchange(port: int, data: bytes) -> tuple[bytes, bool]:
    """Write ``data`` to a fresh connection; what came back and whether the server closed it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(data)
        received = b""
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                chunk = connection.recv(4096)
            except TimeoutError:
                return received, False
            except ConnectionResetError:
                return received, True
            if not chunk:
                return received, True
            received += chunk
        return received, False


def test_bytes_that_are_not_http2_are_refused_at_the_connection(target: Target, snapshot: Snapshot) -> None:
    before = snapshot.take()

    @BOUNDED
    @given(
        data=st.one_of(
            st.binary(min_size=1, max_size=2048).filter(lambda data: not PREFACE.startswith(data[:24])),
            st.just(b"GET / HTTP/1.1\r\nHost: pipelinejobs\r\n\r\n"),
            st.binary(min_size=9, max_size=512).map(lambda frames: PREFACE + b"\xff" + frames),
        )
    )
    def fuzz(data: bytes) -> None:
        received, closed = exchange(target.server.port, data)
        # Only HTTP/2 ever comes back: the server's SETTINGS frame, then the connection is closed.
        assert closed, received
        assert len(received) >= 9, received
        assert received[3] == SETTINGS, received

    fuzz()
    assert_serving(target)
    assert snapshot.take() == before
