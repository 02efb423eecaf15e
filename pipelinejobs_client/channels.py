"""Channel credentials and call metadata shared by the blocking and asyncio clients."""

from __future__ import annotations

import grpc

from .tls import ClientTls

Metadata = tuple[tuple[str, str], ...]

# Each call's deadline unless the client is given another.
DEFAULT_TIMEOUT_S = 10.0

# Spread calls over every address a name resolves to ("dns:///pipelinejobs-grpc:50051" in compose.yaml),
# and keep idle channels alive through load balancers that drop quiet connections.
ChannelOptions = tuple[tuple[str, str | int], ...]
CHANNEL_OPTIONS: ChannelOptions = (
    ("grpc.service_config", '{"loadBalancingConfig": [{"round_robin": {}}]}'),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
)


def call_metadata(api_key: str | None) -> Metadata:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


Tls = bool | grpc.ChannelCredentials | ClientTls
"""What a client's ``tls`` takes: False (plaintext), True (the system's roots), credentials, or files."""


def channel_credentials(tls: Tls) -> grpc.ChannelCredentials | None:
    """None for a plaintext channel; the system's roots for ``True``; a ``ClientTls``'s files read;
    given credentials as they are."""
    if tls is True:
        return grpc.ssl_channel_credentials()
    if tls is False:
        return None
    if isinstance(tls, ClientTls):
        return tls.credentials()
    return tls


def channel_options(tls: Tls) -> ChannelOptions:
    """The options of every channel, and those a ``ClientTls`` adds (the name its server must carry)."""
    return CHANNEL_OPTIONS + (tls.options() if isinstance(tls, ClientTls) else ())
