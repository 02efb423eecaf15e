"""``pipelinejobs events list|watch``: the feed of every job's events (docs/events.md).

``list`` prints the entries after ``--after CURSOR`` up to the newest (or ``--limit`` of them), then the
cursor to go on from. ``watch`` prints the entries after the cursor, then each new one as it is fed,
resuming by itself after a server's restart; with ``--json`` one object a line, bookmarks included
(``{"bookmark": CURSOR}``), so that a script keeps the last cursor it saw and passes it to ``--after``
next time: nothing is skipped, nothing printed twice. The last cursor also goes to standard error when
the command ends (Ctrl-C included) as ``cursor: ...``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from pipelinejobs_client import views
from pipelinejobs_client.api.v1 import feed_pb2

from . import common
from .watch import WATCH_RETRY


def add_commands(commands: argparse._SubParsersAction[common.Parser]) -> None:
    parser = commands.add_parser("events", help="the feed of every job's events: list it, follow it")
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=common.Parser
    )
    listing = actions.add_parser("list", help="the feed after a cursor, up to now")
    _filters(listing)
    listing.add_argument("--limit", type=int, default=0, metavar="N", help="at most N entries (0: all)")
    listing.set_defaults(handler=list_events)
    watch = actions.add_parser("watch", help="the feed after a cursor (or from now), then each new entry")
    _filters(watch)
    watch.add_argument("--from-now", action="store_true", help="only entries fed from now on")
    watch.add_argument(
        "--for",
        dest="seconds",
        type=float,
        default=0,
        metavar="SECONDS",
        help="end after this long (0: never)",
    )
    watch.set_defaults(handler=watch_events)


def _filters(parser: common.Parser) -> None:
    parser.add_argument("--after", default="", metavar="CURSOR", help="start after this cursor")
    parser.add_argument("--pipeline", action="append", default=[], metavar="UUID", help="repeatable")
    parser.add_argument("--job", action="append", default=[], metavar="UUID", help="repeatable")
    parser.add_argument(
        "--event", action="append", default=[], metavar="NAME", help="e.g. finish; repeatable"
    )
    parser.add_argument(
        "--to-state", action="append", default=[], metavar="STATE", type=str.upper, help="repeatable"
    )
    parser.add_argument(
        "--source", action="append", default=[], metavar="SOURCE", help="grpc, callback, admin"
    )
    parser.add_argument("--lab", action="append", default=[], metavar="NAME")
    parser.add_argument("--experiment", action="append", default=[], metavar="NAME")
    parser.add_argument("--sample", action="append", default=[], metavar="ID")
    parser.add_argument(
        "--include-cancelled", action="store_true", help="with --event/--to-state/--source: cancels too"
    )
    parser.add_argument("--data", action="store_true", help="with each event's data")
    common.add_json_flag(parser)
    common.add_connection_arguments(parser)


def _filter_arguments(options: argparse.Namespace) -> dict[str, Any]:
    return {
        "pipelines": options.pipeline,
        "jobs": options.job,
        "events": options.event,
        "to_states": options.to_state,
        "sources": options.source,
        "lab": options.lab,
        "experiment": options.experiment,
        "sample": options.sample,
        "include_cancelled": options.include_cancelled,
    }


def _print(entry: feed_pb2.FeedEntry, as_json: bool) -> None:
    view = views.feed_entry(entry)
    if as_json:
        print(json.dumps(view, sort_keys=True), flush=True)
        return
    data = json.dumps(view["data"], sort_keys=True) if view["data"] else ""
    print(
        f"{view['feed_time']}  {view['job_uuid']}  {view['seq']:>5}  {view['event']:<10} "
        f"{view['from_state'] or '-':>10} -> {view['to_state'] or '-':<10} {data}",
        flush=True,
    )


def _last_cursor(cursor: str) -> None:
    # On standard error, so that standard output stays the entries alone (one JSON object a line).
    print(f"cursor: {cursor}", file=sys.stderr, flush=True)


def list_events(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    cursor, printed = options.after, 0
    with common.connect(options, environ) as client:
        while True:
            page_size = min(options.limit - printed, 1000) if options.limit else 0
            page = client.list_events(
                after_cursor=cursor, page_size=page_size, full=options.data, **_filter_arguments(options)
            )
            for entry in page.entries:
                _print(entry, options.json)
            printed += len(page.entries)
            cursor = page.next_cursor
            if page.caught_up or (options.limit and printed >= options.limit):
                break
        if options.limit and printed >= options.limit and page.entries:
            cursor = page.entries[-1].cursor
    if options.json:
        print(json.dumps({"next_cursor": cursor}), flush=True)
    _last_cursor(cursor)
    return 0


def watch_events(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    cursor = options.after
    try:
        with common.connect(options, environ, retry=WATCH_RETRY) as client:
            items = client.watch_events(
                after_cursor=cursor,
                from_now=options.from_now and not cursor,
                full=options.data,
                bookmarks=True,
                end_time=datetime.now(UTC) + timedelta(seconds=options.seconds) if options.seconds else None,
                **_filter_arguments(options),
            )
            for item in items:
                cursor = item.cursor
                if isinstance(item, feed_pb2.FeedEntry):
                    _print(item, options.json)
                elif options.json:
                    print(json.dumps({"bookmark": item.cursor}), flush=True)
    finally:
        if cursor:
            _last_cursor(cursor)
    return 0
