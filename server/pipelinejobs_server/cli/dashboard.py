"""``pipelinejobs dashboard``: the read-only dashboard alone, under /ui, in front of a running gRPC server.

The internal counterpart of the public callback shim: deployed apart, it can stay on an internal network
while the shim faces the executors. Under ``up`` both share one port.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import replace

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.ui import PREFIX, DashboardSettings, create_app
from pipelinejobs_server.web.mounting import mounted

from . import options as common
from .http import serve_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--server",
        default=None,
        help="gRPC server host:port (env PIPELINEJOBS_SERVER; default 127.0.0.1:50051)",
    )
    parser.add_argument(
        "--host", default=None, help="HTTP listen address (env PIPELINEJOBS_UI_HOST; default 127.0.0.1)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=None,
        help="HTTP port (env PIPELINEJOBS_UI_PORT; default 8081; 0 picks a free one)",
    )
    common.add_logging_arguments(parser)


def settings_from(options: argparse.Namespace, environ: Mapping[str, str]) -> DashboardSettings:
    settings = DashboardSettings.from_environ(environ)
    changes = {"server": options.server, "host": options.host, "port": options.port}
    settings = replace(settings, **{name: value for name, value in changes.items() if value is not None})
    settings.validate()
    return settings


def run(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = settings_from(options, environ)
    # Under /ui as under `up`: the sign-in cookie is scoped to that path. A configured key is checked
    # on the first page view, whose answer says what is wrong with it.
    return serve_app(
        mounted({PREFIX: create_app(settings)}),
        settings.host,
        settings.port,
        "dashboard",
        lambda url: f"dashboard on {url}{PREFIX}/ (gRPC server {settings.server})",
    )


COMMAND = Command(
    help="run the read-only dashboard (/ui/) in front of a gRPC server",
    add_arguments=add_arguments,
    run=common.guarded(run),
)
