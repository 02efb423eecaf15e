"""``pipelinejobs health``: ask a server's standard gRPC health service (grpc.health.v1); exit 0 if SERVING.

A probe for scripts, load balancers and container health checks (the Dockerfile's HEALTHCHECK uses it).
It needs no API key: the health service is open, as gRPC's own health checking protocol intends. TLS
comes from the same flags and variables as every client's (tls.py), so a container's check works with
the container's environment.

Exit codes as every client command's: 0 SERVING; 1 the server answered, and is not serving (its database
is down: NOT_SERVING) or refused the check; 3 no server answered (UNAVAILABLE, the deadline passed). A
container's HEALTHCHECK counts every non-zero code as unhealthy.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from pipelinejobs_client.channels import channel_options
from pipelinejobs_client.tls import ClientTls

from . import common, output

# The codes of cli/__init__.py (EXIT_OK, EXIT_SERVICE, EXIT_UNAVAILABLE), which imports this module.
EXIT_SERVING, EXIT_NOT_SERVING, EXIT_UNAVAILABLE = 0, 1, 3
UNREACHABLE = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
TIMEOUT_S = 5.0
# The server's name for its upkeep (server/pipelinejobs_server/api/health.py, UPKEEP_SERVICE).
UPKEEP_SERVICE = "pipelinejobs.upkeep"


def add_commands(commands: argparse._SubParsersAction[common.Parser]) -> None:
    """``pipelinejobs health [--server HOST:PORT] [--tls-ca PEM] [--tls-client-cert PEM ...]``."""
    parser = commands.add_parser(
        "health", help="ask a server's standard gRPC health service; exit 0 if SERVING"
    )
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        help=f"the server (env {common.SERVER_ENV}; default {common.DEFAULT_SERVER})",
    )
    parser.add_argument("--tls", action="store_true", help="check a TLS server (system root certificates)")
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"server": …, "status": "SERVING" or null, "code": "OK" or the error, '
        '"upkeep": "done" / "in progress" (indexes being built, jobs being counted) or null} for scripts',
    )
    common.add_client_tls_arguments(parser)
    parser.set_defaults(handler=check)


def _channel(target: str, tls: ClientTls | None) -> grpc.Channel:
    options = channel_options(tls or False)
    if tls is not None:
        return grpc.secure_channel(target, tls.credentials(), options=options)
    return grpc.insecure_channel(target, options=options)


def _upkeep(channel: grpc.Channel) -> str | None:
    """What the server still finishes after its start (indexes, the first count of its jobs): "done",
    "in progress", or None from a server that does not report it."""
    try:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=UPKEEP_SERVICE), timeout=TIMEOUT_S
        )
    except grpc.RpcError:
        return None
    return "done" if reply.status == health_pb2.HealthCheckResponse.SERVING else "in progress"


def check(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print ``HOST:PORT: STATUS`` (or JSON); exit 0 when SERVING, 1 when not, 3 when unreachable."""
    target = common.server(options, environ)
    try:
        tls = common.client_tls(options, environ)
        channel = _channel(target, tls)
    except (ValueError, OSError) as error:
        raise common.UsageError(str(error)) from None
    with channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S
            )
        except grpc.RpcError as error:
            call: grpc.Call = error  # type: ignore[assignment]  # a failed stub call is also a Call
            code = call.code()
            if options.json:
                output.emit_json({"server": target, "status": None, "code": code.name})
            # One line, as every client command's failure: the code, what gRPC said, the server.
            output.error(f"{code.name}: {call.details() or 'no answer'} (server {target})")
            return EXIT_UNAVAILABLE if code in UNREACHABLE else EXIT_NOT_SERVING
        upkeep = _upkeep(channel)
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    if options.json:
        output.emit_json({"server": target, "status": status, "code": "OK", "upkeep": upkeep})
    else:
        print(f"{target}: {status}")
    return EXIT_SERVING if reply.status == health_pb2.HealthCheckResponse.SERVING else EXIT_NOT_SERVING
