"""``pipelinejobs jobs watch UUID``: print a job's history, then each new entry as it is applied.

The stream is resumed from the last seq printed when the connection drops (a server restart, say), so
nothing is missed and nothing printed twice. It ends when the job reaches an ``--until`` state, or on
Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping

from pipelinejobs_client import views
from pipelinejobs_client.errors import DeadlineExceeded, ServiceUnavailable

from . import common

RECONNECT_S = 1.0


def add_action(actions: argparse._SubParsersAction[common.Parser]) -> None:
    watch = actions.add_parser("watch", help="follow a job: its history, then each new event as it happens")
    watch.add_argument("uuid", metavar="UUID")
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


def watch_job(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    seq = options.after_seq
    with common.connect(options, environ) as client:
        while True:
            try:
                for event in client.watch_job(options.uuid, after_seq=seq, until_states=options.until):
                    entry = views.history_event(event)
                    if options.json:
                        print(json.dumps(entry, sort_keys=True), flush=True)
                    else:
                        data = json.dumps(entry["data"], sort_keys=True) if entry["data"] else ""
                        print(
                            f"{entry['seq']:>6}  {entry['timestamp']}  {entry['event']:<10} "
                            f"{entry['from_state'] or '-':>10} -> {entry['to_state']:<10} {data}",
                            flush=True,
                        )
                    seq = event.seq
                return 0
            except (ServiceUnavailable, DeadlineExceeded):
                time.sleep(RECONNECT_S)  # resume after the last seq printed: no gap, no repeat
