"""``pipelinejobs dashboard``: the read-only dashboard alone, under /ui, in front of a running gRPC server.

The internal counterpart of the public callback shim: deployed apart, it can stay on an internal network
while the shim faces the executors. Under ``up`` both share one port.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.ui import PREFIX, DashboardSettings, create_app
from pipelinejobs_server.web.mounting import mounted

from . import options as common
from .http import serve_app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    common.add_http_app_arguments(parser, "UI", DashboardSettings.port)
    common.add_logging_arguments(parser)


def settings_from(options: argparse.Namespace, environ: Mapping[str, str]) -> DashboardSettings:
    settings = common.with_flags(
        DashboardSettings.from_environ(environ),
        server=options.server,
        host=options.host,
        port=options.port,
        tls=common.client_tls(options, environ),
    )
    settings.validate()
    return settings


def run(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    settings = settings_from(options, environ)
    # Under /ui as under `up`: the sign-in cookie is scoped to that path. A configured key is checked
    # on the first page view, whose answer says what is wrong with it.
    return serve_app(
        mounted({PREFIX: create_app(settings)}, home=PREFIX),
        settings.host,
        settings.port,
        "dashboard",
        lambda url: f"dashboard on {url}{PREFIX}/ (gRPC server {settings.server})",
        limits=settings.connections,
    )


COMMAND = Command(
    help="run the read-only dashboard (/ui/) in front of a gRPC server",
    add_arguments=add_arguments,
    run=common.guarded(run),
)
