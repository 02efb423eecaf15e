"""``pipelinejobs jobs create|show|event|cancel|revoke-tokens``: one job's life, from creation to its events.

``jobs list`` is in listing.py; the history, verification and rejected-event commands in history.py.
``jobs create`` is the only command that prints a job token: the service shows it in that one reply
and keeps only its hash.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from pipelinejobs_client import token_id, views

from . import common, history, listing, output, provenance, watch

WITHHELD = (
    "the job exists and was created with another API key; only that key (and admin keys) get tokens for "
    "it: ask its creator for one, or use that key"
)


def add_commands(commands: argparse._SubParsersAction[common.Parser]) -> None:
    """``pipelinejobs jobs ACTION``: create, show, list, event, cancel, revoke-tokens, history, verify,
    rejected, watch, provenance."""
    parser = commands.add_parser("jobs", help="create jobs, send them events, read their state and history")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create", help="create a job (or get the existing one with the same identity) and its token"
    )
    create.add_argument(
        "--pipeline", required=True, metavar="UUID", type=common.uuid_argument, help="a registered pipeline"
    )
    for link in ("lab", "experiment", "sample"):
        create.add_argument(
            f"--{link}", action="append", default=[], metavar="NAME", help=f"the job's {link} (repeatable)"
        )
    create.add_argument(
        "--data",
        type=common.json_object,
        metavar="JSON",
        help="parameters (a JSON object), part of the identity",
    )
    create.add_argument("--session", default="", help="session name in the archive path (default: generated)")
    create.set_defaults(handler=create_job)

    show = actions.add_parser("show", help="show one job: state, seq, archive path, links, data")
    show.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    show.set_defaults(handler=show_job)
    listing.add_action(actions)

    event = actions.add_parser("event", help="send an event (run, update, finish, fail, ...) to a job")
    event.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    event.add_argument(
        "event", type=common.event, metavar="EVENT", help="an event name, see 'pipelinejobs fsm'"
    )
    event.add_argument("--data", type=common.json_object, metavar="JSON", help="the event's payload")
    add_token_argument(event)
    event.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="makes a retry safe: a key already applied returns the original result (default: a fresh key)",
    )
    event.set_defaults(handler=send_event)

    cancel = actions.add_parser("cancel", help="delete a job that has never been RUNNING, with its history")
    cancel.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    add_token_argument(cancel)
    cancel.set_defaults(handler=cancel_job)

    revoke = actions.add_parser(
        "revoke-tokens",
        help="revoke one token of a job, or all of them, so a leaked one stops working (admin)",
    )
    revoke.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("--all", action="store_true", help="every token of the job")
    which.add_argument("--id", metavar="TOKEN_ID", help="the token with this id (jobs create's token_id)")
    which.add_argument(
        "--token", metavar="TOKEN", help="the token itself: only its id is sent, computed here"
    )
    revoke.set_defaults(handler=revoke_tokens)

    for action in (create, show, event, cancel, revoke):
        common.add_json_flag(action)
        common.add_connection_arguments(action)
    history.add_actions(actions)
    watch.add_action(actions)
    provenance.add_action(actions)


def add_token_argument(parser: argparse.ArgumentParser) -> None:
    """``--token``: the job token, for the commands a token authorizes."""
    parser.add_argument(
        "--token",
        metavar="TOKEN",
        help=f"the job token (env {common.TOKEN_ENV}); not needed with an admin key",
    )


def _job_details(job: dict[str, Any]) -> dict[str, Any]:
    """A job as ``key  value`` lines: links flattened, empty fields as ``-``."""
    links = job["links"]
    return {
        "uuid": job["uuid"],
        "pipeline_uuid": job["pipeline_uuid"],
        "state": job["state"],
        "seq": job["seq"],
        "last_event": job["last_event"] or None,
        "lab": ", ".join(links["lab"]) or None,
        "experiment": ", ".join(links["experiment"]) or None,
        "sample": ", ".join(links["sample"]) or None,
        "data": job["data"],
        "archive_path": job["archive_path"],
        "session": job["session"],
        "agent": job["agent"] or None,
        "task": job["task"] or None,
        "created": job["create_time"],
        "updated": job["update_time"],
    }


def create_job(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Create (or re-create) a job and print it with its token: the only time a token is shown."""
    with common.connect(options, environ) as client:
        reply = client.create_job(
            options.pipeline,
            lab=options.lab,
            experiment=options.experiment,
            sample=options.sample,
            data=options.data,
            session=options.session,
        )
    created = views.created_job(reply)
    if created["token_withheld"]:
        # On stderr as well, so that a script reading --json's "token" hears why it is empty.
        print(f"note: {WITHHELD}", file=sys.stderr)
    if options.json:
        output.emit_json(created)
        return 0
    if created["created"]:
        outcome = "created"
    elif created["token_withheld"]:
        outcome = "the job existed; no token: it was created with another API key"
    else:
        outcome = "the job existed: a fresh token for it"
    output.details(
        {
            "outcome": outcome,
            **_job_details(created["job"]),
            "callback_url": created["callback_url"] or None,
            "token": created["token"] or None,
            "token_id": created["token_id"] or None,
            "token_expires": created["token_expire_time"],
        }
    )
    return 0


def show_job(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print one job."""
    with common.connect(options, environ) as client:
        job = views.job(client.get_job(options.uuid))
    if options.json:
        output.emit_json(job)
    else:
        output.details(_job_details(job))
    return 0


def send_event(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Send one event and print the job after it, and whether it was a replay."""
    with common.connect(options, environ) as client:
        reply = client.send_event(
            options.uuid,
            options.event,
            token=common.job_token(options, environ),
            data=options.data,
            idempotency_key=options.idempotency_key,
        )
    job, entry = views.job(reply.job), views.history_event(reply.event)
    if options.json:
        output.emit_json({"replayed": reply.replayed, "job": job, "event": entry})
        return 0
    output.details(
        {
            "uuid": job["uuid"],
            "event": entry["event"],
            "seq": entry["seq"],
            "transition": f"{entry['from_state']} -> {entry['to_state']}",
            # A replay added nothing: the key had been applied before, and this is that result.
            "replayed": reply.replayed,
            "state": job["state"],
        }
    )
    return 0


def cancel_job(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Delete a job that has never been RUNNING."""
    with common.connect(options, environ) as client:
        client.cancel_job(options.uuid, token=common.job_token(options, environ))
    if options.json:
        output.emit_json({"uuid": options.uuid, "cancelled": True})
    else:
        print(f"cancelled {options.uuid}: the job and its history are deleted")
    return 0


def revoke_tokens(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Revoke a job's tokens (admin key): one by id, or all; the job and its history stay."""
    chosen = token_id(options.token) if options.token else options.id or ""
    with common.connect(options, environ) as client:
        revoked = client.revoke_tokens(options.uuid, token_id=chosen, all_tokens=options.all)
    if options.json:
        output.emit_json({"uuid": options.uuid, "revoked": revoked})
    else:
        print(f"revoked {revoked} token{'' if revoked == 1 else 's'} of {options.uuid}")
    return 0
