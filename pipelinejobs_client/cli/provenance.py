"""``pipelinejobs jobs provenance UUID``: a job's W3C PROV-JSON document, as the service exports it.

The service builds the document (``ExportProvenance``), so the client needs no PROV library: this command
prints it, indented for people by default, or exactly as received with ``--compact`` (for tools that hash
or diff it), to stdout or to ``--output FILE``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path

from . import common


def add_action(actions: argparse._SubParsersAction[common.Parser]) -> None:
    provenance = actions.add_parser(
        "provenance",
        help="a job's provenance as W3C PROV-JSON: the job, its pipeline, agent, links, archive and events",
    )
    provenance.add_argument("uuid", metavar="UUID", type=common.uuid_argument)
    provenance.add_argument(
        "--compact", action="store_true", help="print the document as the service sent it, on one line"
    )
    provenance.add_argument(
        "--output", "-o", metavar="FILE", help="write the document to FILE instead of standard output"
    )
    common.add_connection_arguments(provenance)
    provenance.set_defaults(handler=export_provenance)


def export_provenance(options: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Fetch the document and write it out."""
    with common.connect(options, environ) as client:
        document = client.export_provenance(options.uuid)
    text = document if options.compact else json.dumps(json.loads(document), indent=2, ensure_ascii=False)
    if options.output:
        try:
            Path(options.output).write_text(text + "\n", encoding="utf-8")
        except OSError as error:
            raise common.UsageError(f"cannot write {options.output}: {error.strerror}") from None
    else:
        print(text)
    return 0
