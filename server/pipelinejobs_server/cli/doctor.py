"""``pipelinejobs doctor``: check a whole database, read-only (the checks are the doctor package's).

Exit codes: 0 healthy, 1 problems found, 2 usage, 3 database unavailable.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from pipelinejobs_client.cli.plugins import Command
from pipelinejobs_server.doctor import Doctor
from pipelinejobs_server.doctor.report import JsonReport, TextReport
from pipelinejobs_server.domain.errors import DatabaseUnavailable
from pipelinejobs_server.domain.identity import is_uuid
from pipelinejobs_server.settings import SettingsError, read_int
from pipelinejobs_server.storage import embedded_run
from pipelinejobs_server.storage.embedded import DEFAULT_DATA_DIR, PASSWORD_FILE
from pipelinejobs_server.storage.scan import DatabaseScan

from . import options as common

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
DEFAULT_TIMEOUT_MS = 5000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mongodb-uri", default=None, help="MongoDB connection string (env MONGODB_URI)")
    parser.add_argument(
        "--data-dir",
        default=None,
        metavar="PATH",
        help="the database that `up` runs on this data directory, its URI and password found there "
        f"(env PIPELINEJOBS_DATA_DIR; the default without a URI: {DEFAULT_DATA_DIR}, if it exists)",
    )
    parser.add_argument(
        "--mongodb-password-file",
        default=None,
        metavar="PATH",
        help="the password of the URI's user, read from this file (env MONGODB_PASSWORD_FILE): for the "
        "embedded database of `up`, its data directory's database.password",
    )
    parser.add_argument(
        "--database", default=None, help="database name (env PIPELINEJOBS_DATABASE; default pipelinejobs)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON document instead of text lines")
    parser.add_argument(
        "--strict", action="store_true", help="warnings (crash leftovers the next reader repairs) fail too"
    )
    parser.add_argument(
        "--job", action="append", default=[], metavar="UUID", help="check only this job (repeatable)"
    )


def command(
    options: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run ``pipelinejobs doctor``. Exit codes: 0 healthy, 1 problems, 2 usage, 3 database unavailable."""
    database = options.database or environ.get("PIPELINEJOBS_DATABASE") or "pipelinejobs"
    password_file = options.mongodb_password_file or environ.get("MONGODB_PASSWORD_FILE", "")
    uri, data_dir = where(options, environ)
    if data_dir:
        try:
            uri, password_file = embedded_database(Path(data_dir))
        except ValueError as error:
            print(f"error: {error}", file=err)
            return EXIT_UNAVAILABLE
    if not uri:
        print(
            "error: set MONGODB_URI or --mongodb-uri (the database the servers use), "
            "or --data-dir (the embedded database of `pipelinejobs up`)",
            file=err,
        )
        return EXIT_USAGE
    bad = [job for job in options.job if not is_uuid(job)]
    if bad:
        print(f"error: --job takes a job uuid, got {bad[0]!r}", file=err)
        return EXIT_USAGE
    try:
        timeout_ms = read_int(environ, "PIPELINEJOBS_DB_TIMEOUT_MS", DEFAULT_TIMEOUT_MS, 1)
    except SettingsError as error:
        print(f"error: {error} (milliseconds)", file=err)
        return EXIT_USAGE
    try:
        password = read_password(password_file) if password_file else None
        scan = DatabaseScan(uri, database, timeout_ms=timeout_ms, password=password)
    except ValueError as error:
        print(f"error: {error}", file=err)
        return EXIT_USAGE
    started = time.monotonic()
    with scan as source:
        try:
            source.ping()
            if not source.has_jobs():
                print(f"error: database {database!r} has no jobs collection (check --database)", file=err)
                return EXIT_USAGE
            doctor = Doctor(source, options.job)
            report = JsonReport(out, database) if options.json else TextReport(out)
            for problem in doctor.run():
                report.problem(problem)
        except DatabaseUnavailable as error:
            print(f"error: {error.message}", file=err)
            return EXIT_UNAVAILABLE
    report.finish(database, doctor.summary, options.strict, time.monotonic() - started)
    return EXIT_OK if doctor.summary.healthy(options.strict) else EXIT_PROBLEMS


def where(options: argparse.Namespace, environ: Mapping[str, str]) -> tuple[str, str]:
    """The URI or the data directory to read, one of them: a flag over a variable, a URI over a data
    directory at the same level, and without any of them up's default directory if there is one."""
    candidates = (
        (options.mongodb_uri, ""),
        ("", options.data_dir),
        (environ.get("MONGODB_URI"), ""),
        ("", environ.get("PIPELINEJOBS_DATA_DIR")),
    )
    for uri, data_dir in candidates:
        if uri or data_dir:
            return uri or "", data_dir or ""
    return "", DEFAULT_DATA_DIR if Path(DEFAULT_DATA_DIR).is_dir() else ""


def embedded_database(data_dir: Path) -> tuple[str, str]:
    """The URI (without its password) and the password file of the database ``up`` runs on ``data_dir``;
    ValueError when none runs there. Its port changes on every start: ``up`` records it in the lock it
    holds on the directory (storage/embedded_run.py)."""
    running = embedded_run.holder(data_dir.resolve())
    if running is None:
        raise ValueError(
            f"no database is running on {data_dir}: it runs while `pipelinejobs up --data-dir {data_dir}` "
            "does (start it), or give --mongodb-uri"
        )
    if not running.uri:
        raise ValueError(f"the database on {data_dir} is still starting (pid {running.pid}); try again")
    return running.uri, str(data_dir / PASSWORD_FILE)


def read_password(path: str) -> str:
    try:
        password = Path(path).read_text().strip()
    except OSError as error:
        raise ValueError(f"cannot read the database password: {error}") from None
    if not password:
        raise ValueError(f"the database password file {path} is empty")
    return password


COMMAND = Command(
    help="check a whole database: records against their history, seq, transitions, hash chains",
    description="Read every job of the database (read-only) and check the invariants of the service: "
    "seq without gaps, legal transitions, hash chains, records that agree with their history "
    "(docs/operations.md, 'pipelinejobs doctor'). The database is MONGODB_URI's, or the one `up` runs "
    "on --data-dir (by default .pipelinejobs, when there is no URI). "
    "Exit codes: 0 healthy, 1 problems found, 2 usage, 3 database unavailable.",
    add_arguments=add_arguments,
    run=common.guarded(command),
)
