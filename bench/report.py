"""What a run prints and writes: progress on stderr, the machine, the table of ratios, results.json."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from .stats import Comparison

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "SecantusDB": _version("SecantusDB"),
        "pymongo": _version("pymongo"),
        "grpcio": _version("grpcio"),
    }


def header(info: dict[str, Any], mode: str) -> str:
    return (
        f"PipelineJobs benchmark ({mode})\n"
        f"machine: nproc={info['nproc']} python={info['python']} SecantusDB={info['SecantusDB']} "
        f"pymongo={info['pymongo']} grpcio={info['grpcio']}\n"
        f"platform: {info['platform']}"
    )


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.2f}"


def table(comparisons: Sequence[Comparison]) -> str:
    """One row per comparison: both sides' median and p90, the ratios measured/baseline, the verdict."""
    head = (
        "section", "figure", "baseline", "med", "p90", "measured", "med", "p90",
        "ratio med", "ratio p90", "target", "",
    )  # fmt: skip
    rows = [head]
    for c in comparisons:
        rows.append(
            (
                c.section,
                f"{c.name} [{c.unit}]",
                c.baseline_label,
                _number(c.baseline.median),
                _number(c.baseline.p90),
                c.measured_label,
                _number(c.measured.median),
                _number(c.measured.p90),
                _number(c.ratio_median),
                _number(c.ratio_p90),
                "-" if c.target is None else f"<= {c.target:g}",
                c.verdict,
            )
        )
    numeric = {3, 4, 6, 7, 8, 9}
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = []
    for number, row in enumerate(rows):
        cells = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(row)
        ]
        lines.append("  ".join(cells).rstrip())
        if number == 0:
            lines.append("-" * len(lines[0]))
    return "\n".join(lines)


def write_json(path: Path, document: dict[str, Any]) -> None:
    def clean(value: Any) -> Any:
        # JSON has no NaN: a figure that could not be measured is null.
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list):
            return [clean(item) for item in value]
        return value

    path.write_text(json.dumps(clean(document), indent=2) + "\n")
