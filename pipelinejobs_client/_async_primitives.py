"""What the asyncio client does its own way: its channel, sleeping between retries, and the types of both.

aio.py imports these names from here; the blocking client, generated from aio.py by ``make client``,
imports the same names from _sync_primitives.py instead. Everything else the two flavours share.
"""

from __future__ import annotations

from asyncio import sleep
from collections.abc import Awaitable
from typing import TypeAlias, TypeVar

import grpc

from .channels import CHANNEL_OPTIONS, ChannelOptions

T = TypeVar("T")
Request = TypeVar("Request")
Response = TypeVar("Response")

Channel: TypeAlias = grpc.aio.Channel
UnaryCall: TypeAlias = "grpc.aio.UnaryUnaryMultiCallable[Request, Response]"
StreamCall: TypeAlias = "grpc.aio.UnaryStreamMultiCallable[Request, Response]"
# What a call gives before it is awaited.
Result: TypeAlias = Awaitable[T]


def open_channel(
    target: str, credentials: grpc.ChannelCredentials | None, options: ChannelOptions = CHANNEL_OPTIONS
) -> Channel:
    """A TLS channel with ``credentials``, or a plaintext one without."""
    if credentials is not None:
        return grpc.aio.secure_channel(target, credentials, options=options)
    return grpc.aio.insecure_channel(target, options=options)


async def close_channel(channel: Channel) -> None:
    """Close at once: calls still in flight are cancelled."""
    await channel.close(grace=None)


__all__ = ["Channel", "Result", "StreamCall", "UnaryCall", "close_channel", "open_channel", "sleep"]
