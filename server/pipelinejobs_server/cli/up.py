"""``pipelinejobs up``: everything on one machine, in the foreground — the embedded database, the gRPC
server, and on one HTTP port the callback shim with the dashboard under /ui. Ctrl-C stops them all.

API keys and the shim's callback key secret are generated on first start (keyfiles.py) unless
configured; callback URLs point at this shim unless a public URL is given.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from starlette.types import ASGIApp

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server import shim, ui
from pipelinejobs_server.keyfiles import load_or_create, mode_of
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.stopping import run_bounded
from pipelinejobs_server.storage.embedded import DEFAULT_DATA_DIR, EmbeddedDatabase, EmbeddedDatabaseError
from pipelinejobs_server.web.mounting import mounted
from pipelinejobs_server.web.serving import bind, url_for

from . import options as common
from .loopback import check_reachable, own_client_tls
from .serve import HttpPlan, serve_until_signalled

CALLBACK_KEY_SECRET_FILE = "callback-key.secret"  # noqa: S105 - a file name


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir",
        default=None,
        help="where the database and generated keys live "
        f"(env PIPELINEJOBS_DATA_DIR; default {DEFAULT_DATA_DIR})",
    )
    common.add_server_arguments(parser)
    parser.add_argument(
        "--http-port",
        type=int,
        default=None,
        help="HTTP port of the callback shim and the dashboard, on the same host "
        "(env PIPELINEJOBS_HTTP_PORT; default 8080; 0 picks a free one)",
    )


def _keys(settings: Settings, data_dir: Path) -> tuple[Settings, list[str]]:
    """The settings with generated keys where none are configured, and what to tell the user about them."""
    notes = ["admin key: from PIPELINEJOBS_ADMIN_KEY", "client keys: from PIPELINEJOBS_CLIENT_KEYS"]
    if not settings.admin_keys:
        path = data_dir / "admin.key"
        settings = replace(settings, admin_keys=(load_or_create(path),))
        notes[0] = f"admin key: {path} (mode {mode_of(path):04o})"
    if not settings.client_keys:
        path = data_dir / "client.key"
        settings = replace(settings, client_keys=(load_or_create(path),))
        notes[1] = f"client key: {path} (mode {mode_of(path):04o})"
    return settings, notes


def callback_key_secret(environ: Mapping[str, str], data_dir: Path) -> tuple[str, str]:
    """The shim's secret, configured or generated once and kept (so keys survive restarts), and a note."""
    configured = environ.get(shim.CALLBACK_KEY_SECRET_ENV, "").strip()
    if configured:
        return configured, f"callback key secret: from {shim.CALLBACK_KEY_SECRET_ENV}"
    path = data_dir / CALLBACK_KEY_SECRET_FILE
    return load_or_create(path), f"callback key secret: {path}"


def http_plan(
    options: argparse.Namespace, settings: Settings, environ: Mapping[str, str], secret: str
) -> tuple[HttpPlan, Settings]:
    """Bind the HTTP socket; unless a public URL was given, callback URLs point at this shim."""
    tls = own_client_tls(settings, environ)  # before anything is bound or started
    shim_settings = shim.ShimSettings.from_environ({**environ, shim.CALLBACK_KEY_SECRET_ENV: secret})
    port = options.http_port if options.http_port is not None else shim_settings.port
    host = environ.get("PIPELINEJOBS_HTTP_HOST") or settings.host
    sock = bind(host, port)
    if options.public_url is None and not environ.get("PIPELINEJOBS_PUBLIC_URL"):
        settings = replace(settings, public_url=url_for(host, sock.getsockname()[1]))
    # No API key for the shim: under `up` it needs none (job tokens authorize every event). TLS as the
    # server speaks it, whatever PIPELINEJOBS_TLS_* say for other clients (loopback.py).
    shim_settings = replace(shim_settings, host=host, port=port, api_key="", tls=tls)
    dashboard_settings = replace(ui.DashboardSettings.from_environ(environ), tls=tls)

    def build(target: str) -> ASGIApp:
        return mounted(
            {
                ui.PREFIX: ui.create_app(replace(dashboard_settings, server=target)),
                "": shim.create_app(replace(shim_settings, server=target)),
            },
            home=ui.PREFIX,
        )

    def banner(url: str) -> Sequence[str]:
        return [
            f"callback shim listening on {url}",
            f"dashboard on {url}{ui.PREFIX}/",
            f"callback URLs use {settings.public_url}",
        ]

    async def check(target: str) -> None:
        if tls is not None:
            await check_reachable(target, tls)

    return HttpPlan(sock, build, banner, shim_settings.connections, check), settings


def run(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    data_dir = Path(options.data_dir or environ.get("PIPELINEJOBS_DATA_DIR") or DEFAULT_DATA_DIR).resolve()
    database = EmbeddedDatabase(data_dir)
    try:
        # First of all: a second `up` on the same directory is told so at once, before it finds the
        # ports taken or waits for the database to refuse a store that another process has open.
        database.claim()
    except EmbeddedDatabaseError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        return _run(options, environ, data_dir, database)
    finally:
        database.stop()


def _run(
    options: argparse.Namespace, environ: Mapping[str, str], data_dir: Path, database: EmbeddedDatabase
) -> int:
    settings, key_notes = _keys(common.settings_from(options, environ), data_dir)
    secret, secret_note = callback_key_secret(environ, data_dir)
    try:
        plan, settings = http_plan(options, settings, environ, secret)
    except OSError as error:
        print(
            f"error: the callback shim cannot listen: {error} (--http-port 0 picks a free port)",
            file=sys.stderr,
        )
        return 1
    try:
        uri = database.start()
    except EmbeddedDatabaseError as error:
        plan.sock.close()
        print(f"error: {error}", file=sys.stderr)
        return 1
    try:
        settings = replace(settings, mongodb_uri=uri)
        # The URI without its password: the banner ends up in terminals and logs.
        database_note = (
            f"database: {database.shown_uri} (password in {database.password_path}; "
            f"data in {database.storage_path})"
        )
        banner = [database_note, *key_notes, secret_note, "press Ctrl-C to stop"]
        run_bounded(serve_until_signalled(settings, banner, plan))
    finally:
        plan.sock.close()  # uvicorn closes it when it served; this covers a failed start
    return 0


COMMAND = Command(
    help="start the embedded database and the gRPC server in the foreground",
    add_arguments=add_arguments,
    run=common.guarded(run),
)
