"""What the server's commands share: flags over settings, logging, errors, and waiting for a signal."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from pipelinejobs_client import ClientTls
from pipelinejobs_client.cli.common import add_client_tls_arguments
from pipelinejobs_client.cli.common import client_tls as flagged_tls
from pipelinejobs_server import logs
from pipelinejobs_server.settings import Settings, SettingsError

GRACE_S = 10.0
"""How long in-flight calls get after SIGTERM or Ctrl-C: the HTTP apps' and the server's together."""

Run = Callable[[argparse.Namespace, Mapping[str, str]], int]
SettingsT = TypeVar("SettingsT")


def add_logging_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default=None, help="log level (env PIPELINEJOBS_LOG_LEVEL; default INFO)"
    )
    parser.add_argument(
        "--log-format", choices=logs.FORMATS, default=None, help="text or json (env PIPELINEJOBS_LOG_FORMAT)"
    )


def add_http_app_arguments(parser: argparse.ArgumentParser, env: str, default_port: int) -> None:
    """What an HTTP app run alone (``shim``, ``dashboard``) takes: its gRPC server and where it listens."""
    parser.add_argument(
        "--server",
        default=None,
        help="gRPC server host:port (env PIPELINEJOBS_SERVER; default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--host", default=None, help=f"HTTP listen address (env PIPELINEJOBS_{env}_HOST; default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help=f"HTTP port (env PIPELINEJOBS_{env}_PORT; default {default_port}; 0 picks a free one)",
    )
    add_client_tls_arguments(parser.add_argument_group("TLS to the gRPC server (default: plaintext)"))


def client_tls(options: argparse.Namespace, environ: Mapping[str, str]) -> ClientTls | None:
    """An HTTP app's TLS to its gRPC server: the flags over the ``PIPELINEJOBS_TLS_*`` variables."""
    try:
        return flagged_tls(options, environ)
    except ValueError as error:
        raise SettingsError(str(error)) from None


def with_flags(settings: SettingsT, **flags: Any) -> SettingsT:
    """``settings`` with every flag that was given on the command line (not None) put over it."""
    given = {name: value for name, value in flags.items() if value is not None}
    return replace(settings, **given) if given else settings  # type: ignore[type-var]


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """The gRPC server's flags, shared by ``up`` and ``serve``."""
    parser.add_argument(
        "--host", default=None, help="gRPC listen address (env PIPELINEJOBS_GRPC_HOST; default 127.0.0.1)"
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
    add_logging_arguments(parser)
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


def settings_from(options: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    """The server's settings: the environment's, with every flag given on the command line on top."""
    settings = with_flags(
        Settings.from_environ(environ),
        host=options.host,
        port=options.grpc_port,
        public_url=options.public_url.rstrip("/") if options.public_url is not None else None,
        mongodb_uri=getattr(options, "mongodb_uri", None) or None,
        metrics_port=options.metrics_port,
        log_format=options.log_format,
    )
    tls = with_flags(
        settings.tls,
        cert_file=options.tls_cert,
        key_file=options.tls_key,
        client_ca_file=options.tls_client_ca,
        require_client_cert=options.require_client_cert,
    )
    settings = replace(settings, tls=tls)
    settings.validate()
    return settings


def configure_logging(options: argparse.Namespace, environ: Mapping[str, str]) -> None:
    level = getattr(options, "log_level", None) or environ.get("PIPELINEJOBS_LOG_LEVEL") or "INFO"
    chosen = getattr(options, "log_format", None) or environ.get("PIPELINEJOBS_LOG_FORMAT") or "text"
    logs.configure(level, chosen if chosen in logs.FORMATS else "text")


def guarded(run: Run) -> Run:
    """A command with logging set up, a bad setting as a one-line error (exit 2), Ctrl-C as exit 130."""

    def command(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
        try:
            configure_logging(options, environ)
            with contextlib.suppress(KeyboardInterrupt):
                return run(options, environ)
            return 130
        except SettingsError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2

    return command


async def until_signalled() -> None:
    """Wait for SIGINT or SIGTERM (Ctrl-C, or a container stopping)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
