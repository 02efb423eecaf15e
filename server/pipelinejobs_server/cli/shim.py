"""``pipelinejobs shim``: the HTTP callback shim alone, in front of a running gRPC server.

The public endpoint executors post to; it holds no state, so any number may run behind a balancer.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from starlette.applications import Starlette

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.shim import ShimSettings, create_app

from . import options as common
from .http import serve_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_http_app_arguments(parser, "HTTP", ShimSettings.port)
    parser.add_argument(
        "--api-key",
        default=None,
        help="a client API key sent to the server (env PIPELINEJOBS_SHIM_API_KEY); never an admin key",
    )
    common.add_logging_arguments(parser)


def settings_from(options: argparse.Namespace, environ: Mapping[str, str]) -> ShimSettings:
    settings = common.with_flags(
        ShimSettings.from_environ(environ),
        server=options.server,
        host=options.host,
        port=options.port,
        api_key=options.api_key,
    )
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
