"""What the blocking client does its own way: its channel, sleeping between retries, and the types of both.

The blocking client (client.py, generated from aio.py by ``make client``) imports these names from here,
where the asyncio client imports them from _async_primitives.py. Everything else the two flavours share.
"""

from __future__ import annotations

from time import sleep
from typing import Annotated, TypeAlias, TypeVar

import grpc

from .channels import CHANNEL_OPTIONS, ChannelOptions

T = TypeVar("T")
Request = TypeVar("Request")
Response = TypeVar("Response")

Channel: TypeAlias = grpc.Channel
UnaryCall: TypeAlias = "grpc.UnaryUnaryMultiCallable[Request, Response]"
StreamCall: TypeAlias = "grpc.UnaryStreamMultiCallable[Request, Response]"
# What a call gives: the value itself, with nothing to await.
Result: TypeAlias = Annotated[T, "returned as it is"]


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: ChannelOptions = CHANNEL_OPTIONS
) -> Channel:
    """A TLS channel with ``credentials``, or a plaintext one without."""
    if credentials is not None:
        return grpc.secure_channel(target, credentials, options=options)
    return grpc.insecure_channel(target, options=options)


def close_channel(channel: Channel) -> None:
    """Close at once: calls still in flight are cancelled."""
    channel.close()


__all__ = ["Channel", "Result", "StreamCall", "UnaryCall", "close_channel", "open_channel", "sleep"]
