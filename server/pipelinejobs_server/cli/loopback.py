"""How ``pipelinejobs up``'s own HTTP apps reach its gRPC server: over TLS when the server speaks TLS.

They connect to the server's own listen address, as any client on this machine would, with the
``PIPELINEJOBS_TLS_*`` client settings (pipelinejobs_client/tls.py): the CA that signed the server's
certificate (the system's roots without one), the name to check if the certificate does not name the
listen address, and a client certificate when the server requires one. What cannot work is refused
before anything starts, or, for what only a connection can tell (the CA, the name), as soon as the
server listens: a shim that cannot reach its server would answer every callback 503.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipelinejobs_client import ClientTls
from pipelinejobs_client.channels import channel_options
from pipelinejobs_client.tls import CA_ENV, CERT_ENV, KEY_ENV, SERVER_NAME_ENV
from pipelinejobs_server.settings import Settings, SettingsError

PROBE_TIMEOUT_S = 5.0


def own_client_tls(settings: Settings, environ: Mapping[str, str]) -> ClientTls | None:
    """The TLS ``up``'s apps use to reach its server: None when the server speaks plaintext."""
    if not settings.tls.enabled:
        return None
    try:
        tls = ClientTls.from_environ(environ, tls=True)
    except ValueError as error:
        raise SettingsError(str(error)) from None
    assert tls is not None  # tls=True: never plaintext
    if settings.tls.require_client_cert and not tls.cert_file:
        raise SettingsError(
            "the server requires client certificates, so its own shim and dashboard need one: "
            f"set {CERT_ENV} and {KEY_ENV} (a certificate signed by the --tls-client-ca)"
        )
    return tls


async def check_reachable(target: str, tls: ClientTls) -> None:
    """Ask the server's health service over ``tls``; a connection that fails is a SettingsError."""
    channel = grpc.aio.secure_channel(target, tls.credentials(), options=channel_options(tls))
    try:
        await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=PROBE_TIMEOUT_S
        )
    except grpc.aio.AioRpcError as error:
        if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
            return  # it answered: the connection works
        host = target.rpartition(":")[0]
        raise SettingsError(
            f"the built-in shim and dashboard cannot reach the gRPC server over TLS at {target} "
            f"({error.details()}): set {CA_ENV} to the CA that signed the server's certificate, "
            f"{SERVER_NAME_ENV} to a name the certificate carries if it does not name {host}, "
            f"and, if the server requires client certificates, {CERT_ENV} and {KEY_ENV}"
        ) from None
    finally:
        await channel.close(grace=None)
