"""Channel credentials and call metadata shared by the blocking and asyncio clients."""

from __future__ import annotations

import grpc

Metadata = tuple[tuple[str, str], ...]


def call_metadata(api_key: str | None) -> Metadata:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def channel_credentials(tls: bool | grpc.ChannelCredentials) -> grpc.ChannelCredentials | None:
    """None for a plaintext channel; the system's roots for ``True``; given credentials as they are."""
    if tls is True:
        return grpc.ssl_channel_credentials()
    if tls is False:
        return None
    return tls
