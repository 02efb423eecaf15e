"""Event and job data: a JSON object, checked before anything is sent, carried as a ``Struct``.

A string where a dict belongs, or a value JSON cannot carry, is refused on the caller's side with a
plain ``TypeError``; data nested deeper than protobuf can encode, with ``InvalidArgument`` (field
``data``). Either way nothing is sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import grpc
from google.protobuf import json_format, struct_pb2
from google.protobuf import message as protobuf_message

from pipelinejobs_client.api.v1 import job_service_pb2

from .errors import InvalidArgument

Data = Mapping[str, Any]


def fill(target: struct_pb2.Struct, data: Mapping[str, Any] | None) -> None:
    """Fill a request's Struct field in place.

    Passing a Struct to a message constructor copies it through serialize-and-parse, which fails on
    deep nesting with protobuf's own DecodeError; filled in place, the request reaches the server,
    whose answer (INVALID_ARGUMENT with details) is the precise one.
    """
    if data:
        target.update(dict(data))


def struct(data: Mapping[str, Any] | None) -> struct_pb2.Struct:
    """``data`` as a new ``Struct`` (empty for ``None``)."""
    message = struct_pb2.Struct()
    if data:
        message.update(dict(data))
    return message


def to_dict(message: struct_pb2.Struct) -> dict[str, Any]:
    """A ``Struct`` as a dict (numbers as floats: see ``history.plain``)."""
    value = json_format.MessageToDict(message)
    return value if isinstance(value, dict) else {}


def checked_data(data: Data | None) -> dict[str, Any] | None:
    """``data`` as a dict, or an error saying why it cannot travel as a JSON object."""
    if data is None:
        return None
    if not isinstance(data, Mapping):
        raise TypeError(f"data must be a dict (a JSON object), got {type(data).__name__}: {data!r:.60}")
    payload = dict(data)
    try:
        # Built into a request, as sending would: protobuf refuses nesting past its depth limit there.
        job_service_pb2.SendEventRequest(data=struct(payload))
    except (TypeError, ValueError, AttributeError) as error:
        raise TypeError(f"data must be JSON (dict, list, str, number, bool, None): {error}") from None
    except protobuf_message.Error as error:
        raise InvalidArgument(
            f"data cannot be encoded: {error}",
            code=grpc.StatusCode.INVALID_ARGUMENT,
            reason="INVALID_ARGUMENT",
            metadata={"field": "data"},
        ) from None
    return payload
