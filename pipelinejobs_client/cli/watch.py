"""``pipelinejobs jobs watch UUID``: print a job's history, then each new entry as it is applied.

The client resumes the stream after the last seq printed when the server ends it (``WATCH_RESUME``: the
watch's maximum duration, a server stopping) or the connection drops, so nothing is missed and nothing
printed twice; ``WATCH_RETRY`` bounds how long it keeps trying to reach a server that is gone. It ends
with 0 when the job is in an ``--until`` state — checked, never assumed from the end of a stream — or on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from typing import Any

from pipelinejobs_client import JobsClient, RetryPolicy, views
from pipelinejobs_client.errors import ServiceUnavailable
from pipelinejobs_client.names import state_name

from . import common, history

# A restart of the server takes seconds; a watch rides through one. Eight attempts in a row that reach
# no server, with backoff up to 5 s between them, give up after ~10 to 20 s.
WATCH_RETRY = RetryPolicy(attempts=8, initial_backoff_s=0.5, max_backoff_s=5.0)


def add_action(actions: argparse._SubParsersAction[common.Parser]) -> None:
    watch = actions.add_parser("watch", help="follow a job: its history, then each new event as it happens")
    watch.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    watch.add_argument("--after-seq", type=int, default=0, metavar="SEQ", help="start after this entry")
    watch.add_argument(
        "--until",
        action="append",
        default=[],
        metavar="STATE",
        type=str.upper,
        help="stop once the job is in this state (repeatable), e.g. --until FINISHED --until FAILED",
    )
    common.add_json_flag(watch)
    common.add_connection_arguments(watch)
    watch.set_defaults(handler=watch_job)


def _print(entry: dict[str, Any], as_json: bool) -> None:
    """An entry as `jobs history` shows it: the same columns, or with --json the same object, one per
    line (a stream of JSON lines: the watch prints each as it comes)."""
    if as_json:
        print(json.dumps(entry, ensure_ascii=False), flush=True)
    else:
        print(history.row(history.entry_cells(entry)), flush=True)


def _reached(client: JobsClient, uuid: str, last_state: str, until: list[str]) -> bool:
    """Whether the job is in an ``--until`` state: the last entry printed says so, or the job does (a
    watch of a job already there, after the last entry, prints nothing)."""
    return bool(until) and (last_state in until or state_name(client.get_job(uuid).state) in until)


def watch_job(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    seq, last_state, early_ends, header_printed = options.after_seq, "", 0, False
    with common.connect(options, environ, retry=WATCH_RETRY) as client:
        while True:
            printed = seq
            if not options.json and not header_printed:
                print(history.row(history.COLUMNS), flush=True)
                header_printed = True
            for event in client.watch_job(options.uuid, after_seq=seq, until_states=options.until):
                entry = views.history_event(event)
                _print(entry, options.json)
                seq, last_state = event.seq, str(entry["to_state"])
            if _reached(client, options.uuid, last_state, options.until):
                return 0
            # The stream ended with OK short of the goal: a server of an earlier version did that when
            # it stopped. Watch again, as after WATCH_RESUME, but not for ever.
            early_ends = 0 if seq > printed else early_ends + 1
            if early_ends >= WATCH_RETRY.attempts:
                goal = " or ".join(options.until) if options.until else "a state to wait for"
                raise ServiceUnavailable(f"the watch kept ending before the job reached {goal}")
            time.sleep(WATCH_RETRY.backoff(max(early_ends - 1, 0)))
