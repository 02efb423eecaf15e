"""``pipelinejobs shim``: the HTTP callback shim alone, in front of a running gRPC server.

The public endpoint executors post to; it holds no state, so any number may run behind a balancer.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from pathlib import Path

from starlette.applications import Starlette

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.settings import SettingsError
from pipelinejobs_server.shim import ShimSettings, create_app

from . import options as common
from .http import serve_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_http_app_arguments(parser, "HTTP", ShimSettings.port)
    # Arguments are visible to every user of the machine (ps): the variable or the file is the way to
    # pass a key; the flag is there for quick tries.
    parser.add_argument(
        "--api-key",
        default=None,
        help="a client API key sent to the server (better: env PIPELINEJOBS_SHIM_API_KEY or --api-key-file); "
        "never an admin key",
    )
    parser.add_argument("--api-key-file", default=None, metavar="PATH", help="read that API key from a file")
    common.add_logging_arguments(parser)


def _api_key(options: argparse.Namespace) -> str | None:
    """The key from ``--api-key`` or ``--api-key-file``; None leaves the environment's."""
    if options.api_key is not None and options.api_key_file is not None:
        raise SettingsError("give --api-key or --api-key-file, not both")
    if options.api_key_file is None:
        return options.api_key  # type: ignore[no-any-return]
    try:
        key = Path(options.api_key_file).read_text().strip()
    except OSError as error:
        raise SettingsError(
            f"cannot read the API key file: {error.strerror}: {options.api_key_file}"
        ) from None
    if not key:
        raise SettingsError(f"the API key file is empty: {options.api_key_file}")
    return key


def settings_from(options: argparse.Namespace, environ: Mapping[str, str]) -> ShimSettings:
    settings = common.with_flags(
        ShimSettings.from_environ(environ),
        server=options.server,
        host=options.host,
        port=options.port,
        api_key=_api_key(options),
        tls=common.client_tls(options, environ),
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
        settings.connections,
    )


COMMAND = Command(
    help="run the HTTP callback shim in front of a gRPC server",
    add_arguments=add_arguments,
    run=common.guarded(run),
)
