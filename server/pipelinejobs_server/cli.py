"""``pipelinejobs up`` (embedded database + server) and ``pipelinejobs serve`` (server only)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from .api.server import start_server
from .keyfiles import load_or_create
from .settings import Settings, SettingsError
from .storage.embedded import EmbeddedDatabase, EmbeddedDatabaseError

log = logging.getLogger("pipelinejobs")
GRACE_S = 10.0


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
    serve = commands.add_parser("serve", help="run the gRPC server against an existing MongoDB")
    serve.add_argument("--mongodb-uri", default=None, help="MongoDB connection string (env MONGODB_URI)")
    add_server_arguments(serve, default_host="127.0.0.1")
    health = commands.add_parser(
        "health", help="ask a server's standard gRPC health service; exit 0 if SERVING"
    )
    health.add_argument("--server", default=os.environ.get("PIPELINEJOBS_SERVER", "127.0.0.1:50051"))
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
    settings.validate()
    return settings


async def serve_until_signalled(settings: Settings, banner: Sequence[str] = ()) -> None:
    running = await start_server(settings)
    print(f"gRPC server listening on {settings.host}:{running.port}", flush=True)
    for line in banner:
        print(line, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("stopping: finishing in-flight calls (up to %.0f s)", GRACE_S)
    await running.stop(GRACE_S)


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
    database = EmbeddedDatabase(data_dir)
    try:
        uri = database.start()
    except EmbeddedDatabaseError as error:
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
        asyncio.run(serve_until_signalled(settings, banner))
    finally:
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
    asyncio.run(serve_until_signalled(settings))
    return 0


def run_health(options: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(options.server) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        except grpc.RpcError as error:
            print(f"{options.server}: {error.code().name}", file=sys.stderr)
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{options.server}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    logging.basicConfig(
        level=getattr(options, "log_level", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    commands = {"up": run_up, "serve": run_serve, "health": run_health}
    try:
        with contextlib.suppress(KeyboardInterrupt):
            return commands[options.command](options)
        return 130
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
