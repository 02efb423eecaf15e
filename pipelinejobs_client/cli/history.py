"""``pipelinejobs jobs history|verify|rejected``: what happened to a job, and whether it can be trusted."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pipelinejobs_client import views
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.names import event_name, state_name

from . import common, output

FORMATS = ("table", "json", "seed")

# One layout for `jobs history` and `jobs watch`, which prints rows as they come and so cannot align on
# the widest cell: the columns are as wide as the longest name the service can send (events, states).
COLUMNS = ("SEQ", "EVENT", "FROM", "TO", "TIME", "SOURCE", "DATA")
_WIDTHS = (
    5,
    max(len(event_name(value)) for value in job_pb2.JobEvent.values() if value),
    max(len(state_name(value)) for value in job_pb2.JobState.values() if value),
    max(len(state_name(value)) for value in job_pb2.JobState.values() if value),
    len("2018-09-18T01:50:15.284Z"),
    len("callback"),
)


def row(cells: tuple[Any, ...]) -> str:
    """One line of the history's table: fixed columns, the data last and shortened, no trailing space."""
    texts = [output.compact(cell) for cell in cells]
    fixed = [text.ljust(width) for text, width in zip(texts[:-1], _WIDTHS, strict=True)]
    return "  ".join([*fixed, output.shorten(texts[-1])]).rstrip()


def entry_cells(entry: dict[str, Any]) -> tuple[Any, ...]:
    return (
        entry["seq"],
        entry["event"],
        entry["from_state"],
        entry["to_state"],
        entry["timestamp"],
        entry["source"],
        entry["data"] or None,
    )


class HistoryInvalid(Exception):
    """``jobs verify`` found an entry that does not match its hash chain (exit code 1)."""


def add_actions(actions: argparse._SubParsersAction[common.Parser]) -> None:
    """``jobs history``, ``jobs verify`` and ``jobs rejected``."""
    history = actions.add_parser("history", help="a job's history, oldest first")
    history.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    shape = history.add_mutually_exclusive_group()
    shape.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help='table (default), json (every field), or seed: {"history": [{"RUN": {"date", "data"}}]}',
    )
    shape.add_argument(
        "--json", dest="format", action="store_const", const="json", help="same as --format json"
    )
    history.set_defaults(handler=show_history)

    verify = actions.add_parser("verify", help="recompute a job's hash chain; exit 1 if it was edited")
    verify.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    common.add_json_flag(verify)
    verify.set_defaults(handler=verify_history)

    rejected = actions.add_parser(
        "rejected", help="events that reached the service but were not applied (all jobs: admin key)"
    )
    rejected.add_argument(
        "uuid",
        metavar="UUID",
        type=common.uuid_argument,
        nargs="?",
        default="",
        help="one job (default: every job)",
    )
    common.add_json_flag(rejected)
    rejected.set_defaults(handler=list_rejected)

    for action in (history, verify, rejected):
        common.add_connection_arguments(action)


def show_history(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print a job's whole history as a table, JSON, or the seed's document."""
    with common.connect(options, environ) as client:
        events = list(client.iter_job_events(options.uuid, page_size=common.PAGE_SIZE))
    if options.format == "seed":
        output.emit_json(views.seed(events))
        return 0
    entries = [views.history_event(event) for event in events]
    if options.format == "json":
        output.emit_json(entries)
        return 0
    for cells in (COLUMNS, *(entry_cells(entry) for entry in entries)):
        print(row(cells))
    return 0


def verify_history(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print the service's verdict on a job's hash chain; exit 1 if it was edited."""
    with common.connect(options, environ) as client:
        verdict = views.verdict(options.uuid, client.verify_history(options.uuid))
    if options.json:
        output.emit_json(verdict)
    else:
        output.details(
            verdict if not verdict["valid"] else {k: verdict[k] for k in ("uuid", "valid", "checked")}
        )
    if not verdict["valid"]:
        # The report is on stdout for whoever investigates; the exit code is for scripts and CI.
        raise HistoryInvalid(
            f"HISTORY_INVALID: job {options.uuid}: entry {verdict['first_bad_seq']} does not match: "
            f"{verdict['reason']}"
        )
    return 0


def list_rejected(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print the events one job (or, with an admin key, every job) received but did not apply."""
    with common.connect(options, environ) as client:
        found = client.iter_rejected_events(options.uuid, page_size=common.PAGE_SIZE)
        records = [views.rejected_event(record) for record in found]
    if options.json:
        output.emit_json(records)
        return 0
    output.table(
        ("TIME", "JOB", "EVENT", "STATE", "SOURCE", "REASON", "MESSAGE"),
        (
            (
                record["timestamp"],
                record["job_uuid"],
                record["event"],
                record["state"],
                record["source"],
                record["reason"],
                record["message"],
            )
            for record in records
        ),
    )
    return 0
