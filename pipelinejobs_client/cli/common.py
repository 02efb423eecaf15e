"""What every client command shares: connection options, credentials, and argument parsers.

Settings come from the command line first and the environment second. The environment is passed in as
a mapping (``main(argv, environ=...)``), so tests hand over a dict instead of patching ``os.environ``.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NoReturn

from pipelinejobs_client import ClientTls, JobsClient, RetryPolicy
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.errors import UnknownEvent
from pipelinejobs_client.names import event_name, event_value
from pipelinejobs_client.tls import CA_ENV, CERT_ENV, KEY_ENV, SERVER_NAME_ENV, TLS_ENV

DEFAULT_SERVER = "127.0.0.1:50051"
SERVER_ENV = "PIPELINEJOBS_SERVER"
API_KEY_ENV = "PIPELINEJOBS_API_KEY"
# Listings fetch whole pages of the service's largest size: a 100,000-event history is 100 calls, not 1,000.
PAGE_SIZE = 1000
TOKEN_ENV = "PIPELINEJOBS_JOB_TOKEN"  # noqa: S105 - the variable's name, not a secret

# A command-line tool should say "unavailable" within a second or so, not after the library's five
# attempts meant for long-running reactors; UNAVAILABLE still gets two quick retries.
CLI_RETRY = RetryPolicy(attempts=3, initial_backoff_s=0.1, max_backoff_s=0.4)


# Options whose value is opaque and may begin with "-" (tokens and keys are URL-safe base64: one in 64
# starts with "-"). argparse would take such a value for an unknown option, so main() glues each of
# these to its value ("--token=-x…") before parsing.
OPAQUE_OPTIONS = ("--token", "--api-key", "--idempotency-key")


def attach_opaque_values(arguments: list[str]) -> list[str]:
    """``["--token", "-abc"]`` → ``["--token=-abc"]``: each opaque option takes the next argument whole."""
    result: list[str] = []
    pending = ""
    for argument in arguments:
        if pending:
            result.append(f"{pending}={argument}")
            pending = ""
        elif argument in OPAQUE_OPTIONS:
            pending = argument
        else:
            result.append(argument)
    if pending:
        result.append(pending)  # no value follows: argparse reports it
    return result


class UsageError(Exception):
    """The command line is wrong (exit code 2); raised after parsing, e.g. for an unreadable key file."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr, like the service's errors."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see '{self.prog} --help')\n")


def add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    """The options every client command takes: where the service is and how to authenticate."""
    group = parser.add_argument_group("connection")
    group.add_argument(
        "--server", metavar="HOST:PORT", help=f"the service (env {SERVER_ENV}; default {DEFAULT_SERVER})"
    )
    # Arguments are visible to every user of the machine (ps), so the variable and the file are
    # the recommended ways to pass a key; the flag is there for quick tries.
    group.add_argument("--api-key", metavar="KEY", help=f"API key (env {API_KEY_ENV})")
    group.add_argument(
        "--api-key-file", metavar="PATH", help="read the API key from a file, e.g. .pipelinejobs/client.key"
    )
    group.add_argument(
        "--tls",
        action="store_true",
        help=f"connect with TLS, the system's root certificates (env {TLS_ENV}=1)",
    )
    add_client_tls_arguments(group)
    group.add_argument(
        "--timeout",
        type=positive_float,
        default=10.0,
        metavar="SECONDS",
        help="deadline of each call (default 10)",
    )


def add_client_tls_arguments(group: argparse._ActionsContainer) -> None:
    """A TLS client's files (each implies TLS): the CLI's commands, ``health``, ``shim`` and ``dashboard``."""
    group.add_argument(
        "--tls-ca", metavar="PEM", help=f"trust the server's certificate if this CA signed it (env {CA_ENV})"
    )
    group.add_argument(
        "--tls-client-cert", metavar="PEM", help=f"client certificate chain to present (env {CERT_ENV})"
    )
    group.add_argument("--tls-client-key", metavar="PEM", help=f"its private key (env {KEY_ENV})")
    group.add_argument(
        "--tls-server-name",
        metavar="NAME",
        help=f"the name the server's certificate must carry, if not the host (env {SERVER_NAME_ENV})",
    )


def client_tls(options: argparse.Namespace, environ: Mapping[str, str]) -> ClientTls | None:
    """TLS from the flags over the environment; None for plaintext. Raises ValueError if half-configured."""
    return ClientTls.from_environ(
        environ,
        tls=bool(getattr(options, "tls", False)),
        ca_file=options.tls_ca,
        cert_file=options.tls_client_cert,
        key_file=options.tls_client_key,
        server_name=options.tls_server_name,
    )


def add_json_flag(parser: argparse._ActionsContainer) -> None:
    """``--json``: print the command's JSON shape (docs/cli.md) instead of a table."""
    parser.add_argument("--json", action="store_true", help="print JSON for scripts instead of a table")


def api_key(options: argparse.Namespace, environ: Mapping[str, str]) -> str | None:
    """The API key from ``--api-key``, ``--api-key-file`` or the environment, in that order."""
    if options.api_key and options.api_key_file:
        raise UsageError("give --api-key or --api-key-file, not both")
    if options.api_key:
        return str(options.api_key)
    if options.api_key_file:
        try:
            key = Path(options.api_key_file).read_text().strip()
        except OSError as error:
            raise UsageError(
                f"cannot read the API key file: {error.strerror}: {options.api_key_file}"
            ) from None
        if not key:
            raise UsageError(f"the API key file is empty: {options.api_key_file}")
        return key
    return environ.get(API_KEY_ENV) or None


def server(options: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The service's address from ``--server``, the environment, or the default."""
    return str(options.server or environ.get(SERVER_ENV) or DEFAULT_SERVER)


def connect(
    options: argparse.Namespace, environ: Mapping[str, str], *, retry: RetryPolicy = CLI_RETRY
) -> JobsClient:
    """The public client, configured from the options and the environment."""
    try:
        tls = client_tls(options, environ)
        return JobsClient(
            server(options, environ),
            api_key=api_key(options, environ),
            tls=tls or False,
            timeout=float(options.timeout),
            retry=retry,
        )
    except (ValueError, OSError) as error:  # a TLS file half-given, missing or unreadable
        raise UsageError(str(error)) from None


def job_token(options: argparse.Namespace, environ: Mapping[str, str]) -> str:
    """The job token from ``--token`` or the environment; empty when an admin key is to authorize."""
    return str(options.token or environ.get(TOKEN_ENV) or "")


# -- argument types: a ValueError/ArgumentTypeError here becomes a usage error (exit 2) --------------------


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def uuid_argument(text: str) -> str:
    """A job's or pipeline's uuid as typed: upper case is read as lower case (``uuidgen`` on macOS,
    spreadsheets), anything else that is no hyphenated uuid is a usage error, nothing sent. ``""``
    stays ``""`` (an optional uuid not given)."""
    value = text.strip().lower()
    if value and not _UUID.fullmatch(value):
        raise argparse.ArgumentTypeError(f"not a uuid: {text!r} (expected 8-4-4-4-12 hex digits)")
    return value


def positive_float(text: str) -> float:
    """A deadline in seconds; zero or less would fail every call."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, not {text!r}")
    return value


def json_object(text: str) -> dict[str, Any]:
    """``--data``: a JSON object, as event and job data must be."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not valid JSON ({error.msg} at column {error.colno})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object ({{...}}), not {type(value).__name__}")
    return value


def option(text: str) -> tuple[str, Any]:
    """``KEY=VALUE``; the value is JSON when it parses (``4``, ``true``, ``[1,2]``), else a string."""
    key, separator, raw = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, not {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def component(text: str) -> str:
    """``ID`` or ``ID@VERSION``, passed on as the client library takes it."""
    identifier, _, version = text.partition("@")
    if not identifier or (text.endswith("@") and not version):
        raise argparse.ArgumentTypeError(f"expected ID or ID@VERSION, not {text!r}")
    return text


def event(text: str) -> str:
    """An event name as the seed writes it (``run``), in any case, or the enum name (``JOB_EVENT_RUN``)."""
    try:
        value = int(event_value(text))
    except UnknownEvent:
        value = 0
    if not value:  # "unspecified" names the proto's zero value, which is no event at all
        known = ", ".join(event_name(value) for value in job_pb2.JobEvent.values() if value)
        raise argparse.ArgumentTypeError(f"unknown event {text!r}; the events are {known}")
    return event_name(value)


def options_mapping(pairs: list[tuple[str, Any]] | None) -> dict[str, Any]:
    """The ``--option`` pairs as a dict; a key given twice is ambiguous, so refused."""
    result: dict[str, Any] = {}
    for key, value in pairs or []:
        if key in result:
            raise UsageError(f"--option {key} is given twice")
        result[key] = value
    return result
