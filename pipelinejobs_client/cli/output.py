"""Printing: JSON for scripts, aligned tables and ``key  value`` blocks for people.

Everything goes to ``sys.stdout`` as it is at call time, so pytest's ``capsys`` sees it. Tables shorten
long cells (``data``) to keep one row per line; ``--json`` never shortens anything.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

WIDEST_CELL = 60


def emit_json(value: Any) -> None:
    """Print a JSON value, indented, non-ASCII as it is."""
    print(json.dumps(value, indent=2, ensure_ascii=False))


def compact(value: Any) -> str:
    """A cell: strings as they are, ``None`` as ``-``, anything else as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def shorten(text: str, width: int = WIDEST_CELL) -> str:
    # One line per row: a newline inside user data would break the table apart.
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[: width - 1] + "…"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Columns aligned on the widest cell; the last column is left ragged, as it is often long."""
    cells = [[shorten(compact(value), WIDEST_CELL) for value in row] for row in rows]
    widths = [len(header) for header in headers]
    for row in cells:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    for row in [list(headers), *cells]:
        padded = [cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=False)]
        print("  ".join([*padded, row[-1]]).rstrip())


def details(fields: Mapping[str, Any]) -> None:
    """One ``key  value`` line per field, values in full (a single object is worth reading whole)."""
    width = max((len(key) for key in fields), default=0)
    for key, value in fields.items():
        print(f"{key.ljust(width)}  {compact(value)}".rstrip())


def note(message: str) -> None:
    """A remark for the person at the terminal, on stderr so that piped output stays clean."""
    print("note: " + message, file=sys.stderr)


def error(message: str) -> None:
    """The one-line error every failing command ends with."""
    print("error: " + " ".join(message.split()), file=sys.stderr)
