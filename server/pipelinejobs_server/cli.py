"""``pipelinejobs up`` (embedded database + server + callback shim), ``pipelinejobs serve`` (server
only), ``pipelinejobs shim`` (the HTTP callback shim only, in front of a running server) and
``pipelinejobs doctor`` (check a whole database; doctor.py)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeVar

from . import doctor, logs
from .api.server import settle_tasks, start_server
from .keyfiles import load_or_create
from .settings import Settings, SettingsError
from .shim import ShimSettings, create_app
from .shim.failures import ShimMisconfigured
from .shim.runner import RunningShim, bind, host_port, start_shim, url_for
from .storage.embedded import EmbeddedDatabase, EmbeddedDatabaseError

log = logging.getLogger("pipelinejobs")
GRACE_S = 10.0  # in-flight calls get this long after SIGTERM or Ctrl-C, the shim's and the server's together
LEFTOVER_S = 1.0  # the tasks still running when the program ends, after they were cancelled
T = TypeVar("T")


def run_bounded(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, except that the tasks still running at the end get ``LEFTOVER_S``, not for ever.

    ``asyncio.run`` cancels what is left and waits for all of it without a limit. A task inside a call
    to a database that stopped answering can outlive its cancellation for the socket timeout (10 s):
    a cancelled change-stream read first sends killCursors, and Python 3.11 can lose a cancellation
    inside the driver altogether (api/health.py). The stop already gave up on such tasks; so does this.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(settle_tasks(LEFTOVER_S))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


def add_server_arguments(parser: argparse.ArgumentParser, *, default_host: str) -> None:
    parser.add_argument(
        "--host",
        default=None,
        help=f"gRPC listen address (env PIPELINEJOBS_GRPC_HOST; default {default_host})",
    )
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=None,
        help="gRPC port (env PIPELINEJOBS_GRPC_PORT; default 50051; 0 picks a free one)",
    )
    parser.add_argument(
        "--public-url",
        default=None,
        help="base URL of the callback shim, used in callback URLs (env PIPELINEJOBS_PUBLIC_URL)",
    )
    parser.add_argument("--log-level", default=os.environ.get("PIPELINEJOBS_LOG_LEVEL", "INFO"))
    parser.add_argument(
        "--log-format", choices=logs.FORMATS, default=None, help="text or json (env PIPELINEJOBS_LOG_FORMAT)"
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        help="serve Prometheus /metrics on this port (env PIPELINEJOBS_METRICS_PORT; default: off)",
    )
    tls = parser.add_argument_group("TLS (env PIPELINEJOBS_TLS_*; default: plaintext)")
    tls.add_argument("--tls-cert", default=None, metavar="PEM", help="server certificate chain")
    tls.add_argument("--tls-key", default=None, metavar="PEM", help="server private key")
    tls.add_argument("--tls-client-ca", default=None, metavar="PEM", help="CA that signs client certificates")
    tls.add_argument(
        "--require-client-cert",
        action="store_true",
        default=None,
        help="refuse clients without a certificate",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pipelinejobs", description="PipelineJobs server commands")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the embedded database and the gRPC server in the foreground")
    up.add_argument(
        "--data-dir",
        default=os.environ.get("PIPELINEJOBS_DATA_DIR", ".pipelinejobs"),
        help="where the database and generated keys live (env PIPELINEJOBS_DATA_DIR)",
    )
    add_server_arguments(up, default_host="127.0.0.1")
    up.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="callback shim HTTP port, on the same host (env PIPELINEJOBS_HTTP_PORT; default 8080; "
        "0 picks a free one)",
    )
    serve = commands.add_parser("serve", help="run the gRPC server against an existing MongoDB")
    serve.add_argument("--mongodb-uri", default=None, help="MongoDB connection string (env MONGODB_URI)")
    add_server_arguments(serve, default_host="127.0.0.1")
    health = commands.add_parser(
        "health", help="ask a server's standard gRPC health service; exit 0 if SERVING"
    )
    health.add_argument("--server", default=os.environ.get("PIPELINEJOBS_SERVER", "127.0.0.1:50051"))
    health.add_argument("--tls-ca", default=None, metavar="PEM", help="check a TLS server, trusting this CA")
    shim = commands.add_parser("shim", help="run the HTTP callback shim in front of a gRPC server")
    shim.add_argument(
        "--server",
        default=None,
        help="gRPC server host:port (env PIPELINEJOBS_SERVER; default 127.0.0.1:50051)",
    )
    shim.add_argument(
        "--host", default=None, help="HTTP listen address (env PIPELINEJOBS_HTTP_HOST; default 127.0.0.1)"
    )
    shim.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (env PIPELINEJOBS_HTTP_PORT; default 8080; 0 picks a free one)",
    )
    shim.add_argument(
        "--api-key",
        default=None,
        help="a client API key sent to the server (env PIPELINEJOBS_SHIM_API_KEY); never an admin key",
    )
    shim.add_argument("--log-level", default=os.environ.get("PIPELINEJOBS_LOG_LEVEL", "INFO"))
    doctor = commands.add_parser(
        "doctor",
        help="check a whole database: records against their history, seq, transitions, hash chains",
        description="Read every job of the database (read-only) and check the invariants of DESIGN "
        "section 6. Exit codes: 0 healthy, 1 problems found, 2 usage, 3 database unavailable.",
    )
    doctor.add_argument("--mongodb-uri", default=None, help="MongoDB connection string (env MONGODB_URI)")
    doctor.add_argument(
        "--database", default=None, help="database name (env PIPELINEJOBS_DATABASE; default pipelinejobs)"
    )
    doctor.add_argument("--json", action="store_true", help="one JSON document instead of text lines")
    doctor.add_argument(
        "--strict", action="store_true", help="warnings (crash leftovers the next reader repairs) fail too"
    )
    doctor.add_argument(
        "--job", action="append", default=[], metavar="UUID", help="check only this job (repeatable)"
    )
    return parser


def settings_from(options: argparse.Namespace) -> Settings:
    settings = Settings.from_environ()
    if options.host is not None:
        settings = replace(settings, host=options.host)
    if options.grpc_port is not None:
        settings = replace(settings, port=options.grpc_port)
    if options.public_url is not None:
        settings = replace(settings, public_url=options.public_url.rstrip("/"))
    if getattr(options, "mongodb_uri", None):
        settings = replace(settings, mongodb_uri=options.mongodb_uri)
    if options.metrics_port is not None:
        settings = replace(settings, metrics_port=options.metrics_port)
    if options.log_format is not None:
        settings = replace(settings, log_format=options.log_format)
    tls_flags = {
        "cert_file": options.tls_cert,
        "key_file": options.tls_key,
        "client_ca_file": options.tls_client_ca,
        "require_client_cert": options.require_client_cert,
    }
    given = {name: value for name, value in tls_flags.items() if value is not None}
    if given:
        settings = replace(settings, tls=replace(settings.tls, **given))
    settings.validate()
    return settings


@dataclass
class ShimPlan:
    """The callback shim ``up`` runs beside the server: its socket is bound before the server starts."""

    settings: ShimSettings
    sock: socket.socket


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def serve_until_signalled(
    settings: Settings, banner: Sequence[str] = (), shim_plan: ShimPlan | None = None
) -> None:
    running = await start_server(settings)
    scheme = "TLS" if settings.tls.enabled else "plaintext"
    print(f"gRPC server listening on {settings.host}:{running.port} ({scheme})", flush=True)
    if running.metrics_http is not None:
        print(f"metrics on http://{host_port(settings.host, running.metrics_http.port)}/metrics", flush=True)
    shim: RunningShim | None = None
    if shim_plan is not None:
        # Same process, same loop; the shim still reaches the server only through gRPC.
        target = host_port(settings.host, running.port)
        try:
            shim = await start_shim(create_app(replace(shim_plan.settings, server=target)), shim_plan.sock)
        except BaseException:
            await running.stop(0)
            raise
        print(f"callback shim listening on {shim.url}", flush=True)
        print(f"callback URLs use {settings.public_url}", flush=True)
    for line in banner:
        print(line, flush=True)
    await _until_signalled()
    log.info("stopping: finishing in-flight calls (up to %.0f s)", GRACE_S)
    # One grace period for both: the shim's requests in flight are the server's calls in flight.
    deadline = asyncio.get_running_loop().time() + GRACE_S
    if shim is not None:
        await shim.stop(GRACE_S)  # first, so no callback arrives at a server that is going away
    await running.stop(max(0.0, deadline - asyncio.get_running_loop().time()))


def shim_plan_for_up(options: argparse.Namespace, settings: Settings) -> tuple[ShimPlan, Settings]:
    """Bind the shim's socket; unless a public URL was given, callback URLs point at this shim."""
    shim_settings = ShimSettings.from_environ()
    port = options.http_port if options.http_port is not None else shim_settings.port
    host = os.environ.get("PIPELINEJOBS_HTTP_HOST") or settings.host
    sock = bind(host, port)
    if options.public_url is None and not os.environ.get("PIPELINEJOBS_PUBLIC_URL"):
        settings = replace(settings, public_url=url_for(host, sock.getsockname()[1]))
    # No API key: under `up` the shim needs none (job tokens authorize every event).
    return ShimPlan(replace(shim_settings, host=host, port=port, api_key=""), sock), settings


def run_up(options: argparse.Namespace) -> int:
    data_dir = Path(options.data_dir).resolve()
    settings = settings_from(options)
    admin_note = "admin key: from PIPELINEJOBS_ADMIN_KEY"
    if not settings.admin_keys:
        admin_path = data_dir / "admin.key"
        settings = replace(settings, admin_keys=(load_or_create(admin_path),))
        admin_note = f"admin key: {admin_path} (mode 0600)"
    client_note = "client keys: from PIPELINEJOBS_CLIENT_KEYS"
    if not settings.client_keys:
        client_path = data_dir / "client.key"
        settings = replace(settings, client_keys=(load_or_create(client_path),))
        client_note = f"client key: {client_path} (mode 0600)"
    try:
        plan, settings = shim_plan_for_up(options, settings)
    except OSError as error:
        print(
            f"error: the callback shim cannot listen: {error} (--http-port 0 picks a free port)",
            file=sys.stderr,
        )
        return 1
    database = EmbeddedDatabase(data_dir)
    try:
        uri = database.start()
    except EmbeddedDatabaseError as error:
        plan.sock.close()
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        settings = replace(settings, mongodb_uri=uri)
        banner = [
            f"database: {uri} (data in {data_dir / 'db'})",
            admin_note,
            client_note,
            "press Ctrl-C to stop",
        ]
        run_bounded(serve_until_signalled(settings, banner, plan))
    finally:
        plan.sock.close()  # uvicorn closes it when it served; this covers a failed start
        database.stop()
    return 0


def run_serve(options: argparse.Namespace) -> int:
    settings = settings_from(options)
    if not settings.mongodb_uri:
        print(
            "error: set MONGODB_URI or --mongodb-uri (or use `pipelinejobs up` for the embedded database)",
            file=sys.stderr,
        )
        return 2
    if not settings.admin_keys and not settings.client_keys:
        log.warning(
            "no API keys configured (PIPELINEJOBS_ADMIN_KEY, PIPELINEJOBS_CLIENT_KEYS): only job tokens work"
        )
    run_bounded(serve_until_signalled(settings))
    return 0


def run_health(options: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    if options.tls_ca:
        credentials = grpc.ssl_channel_credentials(root_certificates=Path(options.tls_ca).read_bytes())
        channel_context = grpc.secure_channel(options.server, credentials)
    else:
        channel_context = grpc.insecure_channel(options.server)
    with channel_context as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            print(f"{options.server}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{options.server}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def shim_settings_from(options: argparse.Namespace) -> ShimSettings:
    settings = ShimSettings.from_environ()
    changes = {
        "server": options.server,
        "host": options.host,
        "port": options.port,
        "api_key": options.api_key,
    }
    settings = replace(settings, **{name: value for name, value in changes.items() if value is not None})
    settings.validate()
    return settings


async def _serve_shim(settings: ShimSettings, sock: socket.socket) -> int:
    app = create_app(settings)
    running = await start_shim(app, sock)
    print(f"callback shim listening on {running.url} (gRPC server {settings.server})", flush=True)
    if settings.api_key:
        try:
            await app.state.shim.relay.verify_key()
        except ShimMisconfigured as error:
            print(f"error: {error.message}", file=sys.stderr)
            await running.stop(0)
            return 2
        except Exception as error:  # the server may come up later; the check runs again on first use
            log.warning("could not check the API key's role yet: %s", type(error).__name__)
    print("press Ctrl-C to stop", flush=True)
    await _until_signalled()
    log.info("stopping: finishing in-flight requests (up to %.0f s)", GRACE_S)
    await running.stop(GRACE_S)
    return 0


def run_shim(options: argparse.Namespace) -> int:
    settings = shim_settings_from(options)
    try:
        sock = bind(settings.host, settings.port)
    except OSError as error:
        print(f"error: cannot listen on {settings.host}:{settings.port}: {error}", file=sys.stderr)
        return 1
    try:
        return run_bounded(_serve_shim(settings, sock))
    finally:
        sock.close()


def run_doctor(options: argparse.Namespace) -> int:
    return doctor.command(options, os.environ)


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    log_format = getattr(options, "log_format", None) or os.environ.get("PIPELINEJOBS_LOG_FORMAT") or "text"
    logs.configure(
        getattr(options, "log_level", "INFO"), log_format if log_format in logs.FORMATS else "text"
    )
    commands = {
        "up": run_up,
        "serve": run_serve,
        "health": run_health,
        "shim": run_shim,
        "doctor": run_doctor,
    }
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return commands[options.command](options)
        return 130
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
