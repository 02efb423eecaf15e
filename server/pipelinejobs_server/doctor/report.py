"""What the doctor prints: one text line per problem and a summary, or one JSON document.

Both write each problem as it is found, so that nothing accumulates in memory on a large database.
"""

from __future__ import annotations

import json
from typing import TextIO

from .checks import Problem
from .run import Summary


class TextReport:
    """One line per problem as it is found, then a summary line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def problem(self, problem: Problem) -> None:
        seq = "-" if problem.seq is None else str(problem.seq)
        print(
            f"{problem.severity:<7} {problem.job_uuid} seq {seq:<6} {problem.code}: {problem.message}",
            file=self._out,
            flush=True,
        )

    def finish(self, database: str, summary: Summary, strict: bool, elapsed_s: float) -> None:
        verdict = "healthy" if summary.healthy(strict) else "PROBLEMS FOUND"
        more = f" ({summary.unreported} more not shown)" if summary.unreported else ""
        mode = ", --strict: warnings count" if strict else ""
        print(
            f"{verdict}: database {database!r}, {summary.jobs} jobs and {summary.events} log entries "
            f"checked in {elapsed_s:.1f} s: {summary.errors} errors, {summary.warnings} warnings{more}{mode}",
            file=self._out,
        )


class JsonReport:
    """One JSON document, written as problems are found so that nothing accumulates in memory."""

    def __init__(self, out: TextIO, database: str) -> None:
        self._out = out
        self._first = True
        out.write(f'{{"database": {json.dumps(database)}, "problems": [')

    def problem(self, problem: Problem) -> None:
        self._out.write(("\n  " if self._first else ",\n  ") + json.dumps(problem.as_json()))
        self._out.flush()
        self._first = False

    def finish(self, database: str, summary: Summary, strict: bool, elapsed_s: float) -> None:
        totals = {
            "jobs": summary.jobs,
            "events": summary.events,
            "errors": summary.errors,
            "warnings": summary.warnings,
            "unreported": summary.unreported,
            "strict": strict,
            "healthy": summary.healthy(strict),
            "seconds": round(elapsed_s, 3),
        }
        self._out.write(("" if self._first else "\n") + f'], "summary": {json.dumps(totals)}}}\n')
