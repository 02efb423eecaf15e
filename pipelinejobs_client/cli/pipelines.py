"""``pipelinejobs pipelines register|list|show``: the pipelines jobs are created from."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from pipelinejobs_client import views

from . import common, output


def add_commands(commands: argparse._SubParsersAction[common.Parser]) -> None:
    """``pipelinejobs pipelines register|list|show``."""
    parser = commands.add_parser("pipelines", help="register and read pipelines")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    register = actions.add_parser(
        "register",
        help="register a pipeline (idempotent: the same components and options give the same uuid)",
    )
    register.add_argument("--name", required=True, help="a human-readable name")
    register.add_argument(
        "--component",
        dest="components",
        action="append",
        required=True,
        type=common.component,
        metavar="ID[@VERSION]",
        help="a software part, e.g. fcs-etl@0.4.0 (repeat for each)",
    )
    register.add_argument(
        "--option",
        dest="options",
        action="append",
        type=common.option,
        metavar="KEY=VALUE",
        help="a fixed option; VALUE is JSON when it parses, else a string (repeat for each)",
    )
    register.add_argument("--description", default="", help="free text")
    register.set_defaults(handler=register_pipeline)

    listing = actions.add_parser("list", help="list registered pipelines, oldest first")
    listing.set_defaults(handler=list_pipelines)

    show = actions.add_parser("show", help="show one pipeline")
    show.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    show.set_defaults(handler=show_pipeline)

    for action in (register, listing, show):
        common.add_json_flag(action)
        common.add_connection_arguments(action)


def _details(pipeline: dict[str, Any]) -> dict[str, Any]:
    """A pipeline as ``key  value`` lines."""
    return {
        "uuid": pipeline["uuid"],
        "name": pipeline["name"],
        "description": pipeline["description"] or None,
        "components": ", ".join(views.component_label(part) for part in pipeline["components"]),
        "options": pipeline["options"],
        "created": pipeline["create_time"],
    }


def register_pipeline(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Register a pipeline (or find it registered) and print it."""
    fixed = common.options_mapping(options.options)
    with common.connect(options, environ) as client:
        reply = client.register_pipeline(
            options.name, options.components, options=fixed, description=options.description
        )
    pipeline = views.pipeline(reply.pipeline)
    if options.json:
        output.emit_json({"created": reply.created, "pipeline": pipeline})
    else:
        output.details({"registered": "new" if reply.created else "already registered", **_details(pipeline)})
    return 0


def list_pipelines(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print every registered pipeline, following the pages."""
    with common.connect(options, environ) as client:
        pipelines = [views.pipeline(message) for message in client.iter_pipelines(page_size=common.PAGE_SIZE)]
    if options.json:
        output.emit_json(pipelines)
        return 0
    output.table(
        ("UUID", "NAME", "CREATED", "COMPONENTS"),
        (
            (
                pipeline["uuid"],
                pipeline["name"],
                pipeline["create_time"],
                ", ".join(views.component_label(part) for part in pipeline["components"]),
            )
            for pipeline in pipelines
        ),
    )
    return 0


def show_pipeline(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Print one pipeline."""
    with common.connect(options, environ) as client:
        pipeline = views.pipeline(client.get_pipeline(options.uuid))
    if options.json:
        output.emit_json(pipeline)
    else:
        output.details(_details(pipeline))
    return 0
