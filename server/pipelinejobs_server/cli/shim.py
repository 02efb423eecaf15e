"""``pipelinejobs shim``: the HTTP callback shim alone, in front of a running gRPC server.

The public endpoint executors post to; it holds no state, so any number may run behind a balancer.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace

from starlette.applications import Starlette

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.shim import ShimSettings, create_app

from . import options as common
from .http import serve_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=None,
        help="gRPC server host:port (env PIPELINEJOBS_SERVER; default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--host", default=None, help="HTTP listen address (env PIPELINEJOBS_HTTP_HOST; default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (env PIPELINEJOBS_HTTP_PORT; default 8080; 0 picks a free one)",
    )
    parser.add_argument(
        "--api-key",
        default=None,
        help="a client API key sent to the server (env PIPELINEJOBS_SHIM_API_KEY); never an admin key",
    )
    common.add_logging_arguments(parser)


def settings_from(options: argparse.Namespace, environ: Mapping[str, str]) -> ShimSettings:
    settings = ShimSettings.from_environ(environ)
    changes = {
        "server": options.server,
        "host": options.host,
        "port": options.port,
        "api_key": options.api_key,
    }
    settings = replace(settings, **{name: value for name, value in changes.items() if value is not None})
    settings.validate()
    return settings


async def _check_key(app: Starlette) -> None:
    await app.state.shim.relay.verify_key()


def run(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = settings_from(options, environ)
    check = _check_key if settings.api_key else None
    return serve_app(
        create_app(settings),
        settings.host,
        settings.port,
        "callback-shim",
        lambda url: f"callback shim listening on {url} (gRPC server {settings.server})",
        check,
    )


COMMAND = Command(
    help="run the HTTP callback shim in front of a gRPC server",
    add_arguments=add_arguments,
    run=common.guarded(run),
)
