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

from .stats import Row, Runs

_STARTED = time.perf_counter()


def progress(message: str) -> None:
    print(f"[{time.perf_counter() - _STARTED:6.1f} s] {message}", file=sys.stderr, flush=True)


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "load_average_at_start": os.getloadavg(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "SecantusDB": _version("SecantusDB"),
        "pymongo": _version("pymongo"),
        "grpcio": _version("grpcio"),
    }


def header(info: dict[str, Any], mode: str) -> str:
    load = ", ".join(f"{value:.2f}" for value in info["load_average_at_start"])
    return (
        f"PipelineJobs benchmark ({mode})\n"
        f"machine: nproc={info['nproc']} cpu={info['cpu_model']} python={info['python']} "
        f"SecantusDB={info['SecantusDB']} pymongo={info['pymongo']} grpcio={info['grpcio']}\n"
        f"platform: {info['platform']}; load average at start: {load}"
    )


def _number(value: float) -> str:
    if math.isnan(value):
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _spread(runs: Runs | None) -> str:
    if runs is None:
        return ""
    return f"{_number(runs.low)}-{_number(runs.high)}"


def table(rows: Sequence[Row]) -> str:
    """One line per row: medians over the runs, each with its range (lowest-highest run)."""
    head = (
        "section", "figure", "baseline", "median", "range", "measured", "median", "range",
        "ratio", "range", "target", "",
    )  # fmt: skip
    lines_of_cells = [head]
    for row in rows:
        ratios = row.ratios
        lines_of_cells.append(
            (
                row.section,
                f"{row.name} [{row.unit}]",
                row.baseline_label,
                "" if row.baseline is None else _number(row.baseline.median),
                _spread(row.baseline),
                row.label,
                _number(row.measured.median),
                _spread(row.measured),
                "" if ratios is None else _number(ratios.median),
                _spread(ratios),
                "" if row.target is None else str(row.target),
                row.verdict,
            )
        )
    numeric = {3, 4, 6, 7, 8, 9}
    widths = [max(len(cells[i]) for cells in lines_of_cells) for i in range(len(head))]
    lines = []
    for number, cells in enumerate(lines_of_cells):
        padded = [
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i]) for i, cell in enumerate(cells)
        ]
        lines.append("  ".join(padded).rstrip())
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
