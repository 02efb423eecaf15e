"""``pipelinejobs jobs list``: jobs matching filters, newest first, over the service's keyset pages.

Filters combine with AND; several values of one filter (``--state RUNNING --state FAILED``) with OR.
``--limit`` caps what is fetched (100 by default, so a large service does not flood the terminal); when
more jobs match, a note on stderr says so and ``--json`` stays clean for scripts.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Mapping
from datetime import datetime

from pipelinejobs_client import JobsClient, views
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.errors import PipelineNotFound
from pipelinejobs_client.names import state_name, state_value

from . import common, output

ORDERS = ("created", "+created", "updated", "+updated")
DEFAULT_LIMIT = 100


def add_action(actions: argparse._SubParsersAction[common.Parser]) -> None:
    """``jobs list`` and its filters."""
    listing = actions.add_parser("list", help="list jobs matching filters, newest first")
    listing.add_argument(
        "--pipeline", default="", metavar="UUID", type=common.uuid_argument, help="only this pipeline's jobs"
    )
    listing.add_argument(
        "--state",
        dest="states",
        metavar="STATE",
        action="append",
        default=[],
        type=state,
        help="only jobs in this state (repeatable)",
    )
    for link in ("lab", "experiment", "sample"):
        listing.add_argument(
            f"--{link}",
            action="append",
            default=[],
            metavar="NAME",
            help=f"only jobs of this {link} (repeatable)",
        )
    bounds = {"after": "at or after", "before": "before"}
    for field, bound in itertools.product(("created", "updated"), bounds):
        listing.add_argument(
            f"--{field}-{bound}",
            type=timestamp,
            metavar="TIME",
            help=f"only jobs {field} {bounds[bound]} TIME (ISO 8601; UTC unless an offset is given)",
        )
    listing.add_argument(
        "--order",
        choices=ORDERS,
        default="created",
        help="created, updated: newest first (default created); +created, +updated: oldest first",
    )
    listing.add_argument(
        "--limit",
        type=limit,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N jobs (default {DEFAULT_LIMIT}; 0: all)",
    )
    common.add_json_flag(listing)
    common.add_connection_arguments(listing)
    listing.set_defaults(handler=list_jobs)


def state(text: str) -> str:
    """``--state``: a state name in any case (``running``), as the service's enum knows it."""
    try:
        value = int(state_value(text))
    except ValueError:
        value = 0
    if not value:
        known = ", ".join(state_name(value) for value in job_pb2.JobState.values() if value)
        raise argparse.ArgumentTypeError(f"unknown state {text!r}; the states are {known}")
    return state_name(value)


def timestamp(text: str) -> datetime:
    """``--created-after`` and the like: ISO 8601; a time without an offset is UTC."""
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an ISO 8601 time such as 2024-05-01T12:00Z, not {text!r}"
        ) from None


def limit(text: str) -> int:
    """``--limit``: 0 for everything, else a cap."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError("must be 0 (all) or more")
    return value


def pipeline_names(client: JobsClient, uuids: set[str]) -> dict[str, str]:
    """``name (uuid's first 8)`` for each pipeline, one GetPipeline per distinct pipeline shown: two
    pipelines may share a name (another version of a component), and the short uuid tells them apart."""
    names = {}
    for uuid in sorted(uuids):
        try:
            name = client.get_pipeline(uuid).name
        except PipelineNotFound:
            name = ""
        names[uuid] = f"{name} ({uuid[:8]})" if name else uuid
    return names


def list_jobs(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print the jobs matching the filters, up to ``--limit``."""
    filters = {
        "pipeline_uuid": options.pipeline,
        "states": options.states,
        "lab": options.lab,
        "experiment": options.experiment,
        "sample": options.sample,
        "created_after": options.created_after,
        "created_before": options.created_before,
        "updated_after": options.updated_after,
        "updated_before": options.updated_before,
        "order_by": options.order,
    }
    # One more than asked for tells whether the listing was cut short, without a count query.
    wanted = options.limit + 1 if options.limit else None
    with common.connect(options, environ) as client:
        found = client.iter_jobs(**filters, page_size=min(wanted or common.PAGE_SIZE, common.PAGE_SIZE))
        jobs = [views.job(job) for job in itertools.islice(found, wanted)]
        more = bool(options.limit) and len(jobs) > options.limit
        jobs = jobs[: options.limit or None]
        # The table names each pipeline as the dashboard does; JSON keeps the uuid alone, for scripts.
        names = {} if options.json else pipeline_names(client, {job["pipeline_uuid"] for job in jobs})
    if options.json:
        output.emit_json(jobs)
    else:
        output.table(
            ("UUID", "STATE", "SEQ", "UPDATED", "PIPELINE", "SAMPLE"),
            (
                (
                    job["uuid"],
                    job["state"],
                    job["seq"],
                    job["update_time"],
                    names[job["pipeline_uuid"]],
                    ", ".join(job["links"]["sample"]),
                )
                for job in jobs
            ),
        )
    if more:
        output.note(
            f"more jobs match: showing the first {options.limit} (raise --limit, or --limit 0 for all)"
        )
    return 0
