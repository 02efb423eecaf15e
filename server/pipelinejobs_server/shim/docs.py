"""Write the status tables of docs/callbacks.md from statuses.py; ``--check`` fails when they differ.

Each table sits between ``<!-- statuses:<executor>:start -->`` and ``<!-- statuses:<executor>:end -->``
and is never edited by hand: ``python -m pipelinejobs_server.shim.docs [--check] [path]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .statuses import TABLES, markdown

DEFAULT_PATH = Path("docs/callbacks.md")


def markers(executor: str) -> tuple[str, str]:
    return f"<!-- statuses:{executor}:start (generated) -->", f"<!-- statuses:{executor}:end -->"


def render(text: str) -> str:
    for executor, table in TABLES.items():
        start, end = markers(executor)
        before, found_start, rest = text.partition(start)
        _, found_end, after = rest.partition(end)
        if not (found_start and found_end):
            raise ValueError(f"no {start} ... {end} block")
        text = f"{before}{start}\n{markdown(table)}\n{end}{after}"
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument("--check", action="store_true", help="fail if the page is stale")
    options = parser.parse_args(argv)
    current = options.path.read_text()
    wanted = render(current)
    if options.check:
        if wanted != current:
            print(f"{options.path}: the status tables are stale (run without --check)", file=sys.stderr)
            return 1
        return 0
    options.path.write_text(wanted)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
