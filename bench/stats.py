"""Figures measured in several runs, and the rows the report prints.

Every figure is measured in several independent runs (repetitions); a row reports the median over the runs
and their spread (lowest and highest run). A row with a baseline also reports the ratio measured/baseline
run by run: both sides of one run were measured side by side, so the ratio cancels what drifts between runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0-100), linearly interpolated between the closest ranks."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else math.nan


@dataclass(frozen=True)
class Runs:
    """One value per run."""

    values: tuple[float, ...]

    @classmethod
    def of(cls, values: Sequence[float]) -> Runs:
        return cls(tuple(values))

    @property
    def median(self) -> float:
        return median(self.values)

    @property
    def low(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        return max(self.values) if self.values else math.nan

    def scaled(self, factor: float) -> Runs:
        return Runs(tuple(value * factor for value in self.values))

    def as_dict(self) -> dict[str, Any]:
        return {
            "runs": len(self.values),
            "median": self.median,
            "min": self.low,
            "max": self.high,
            "values": list(self.values),
        }


@dataclass(frozen=True)
class Target:
    """The bound a row's median ratio must respect: ``<= bound``, or ``>= bound`` when ``at_least``."""

    bound: float
    at_least: bool = False

    def met(self, ratio: float) -> bool:
        return ratio >= self.bound if self.at_least else ratio <= self.bound

    def __str__(self) -> str:
        return f"{'>=' if self.at_least else '<='} {self.bound:g}"


AT_MOST_1_2 = Target(1.2)


@dataclass(frozen=True)
class Row:
    """A figure, optionally beside the baseline it was measured against in the same runs."""

    section: str
    name: str
    unit: str
    label: str
    measured: Runs
    baseline_label: str = ""
    baseline: Runs | None = None
    target: Target | None = None

    @property
    def ratios(self) -> Runs | None:
        """measured/baseline, run by run."""
        if self.baseline is None:
            return None
        pairs = zip(self.measured.values, self.baseline.values, strict=True)
        return Runs(tuple(_ratio(measured, baseline) for measured, baseline in pairs))

    @property
    def verdict(self) -> str:
        ratios = self.ratios
        if self.target is None or ratios is None:
            return "info"
        if math.isnan(ratios.median):
            return "n/a"
        return "ok" if self.target.met(ratios.median) else "MISSED"

    def as_dict(self) -> dict[str, Any]:
        ratios = self.ratios
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "measured": {"label": self.label, **self.measured.as_dict()},
            "baseline": None
            if self.baseline is None
            else {"label": self.baseline_label, **self.baseline.as_dict()},
            "ratio": None if ratios is None else ratios.as_dict(),
            "target": None if self.target is None else str(self.target),
            "verdict": self.verdict,
        }


def _ratio(measured: float, baseline: float) -> float:
    if baseline == 0 or math.isnan(baseline) or math.isnan(measured):
        return math.nan
    return measured / baseline


def paired_row(
    section: str,
    name: str,
    unit: str,
    sides: tuple[tuple[str, Sequence[float]], tuple[str, Sequence[float]]],
    target: Target | None = None,
) -> Row:
    """A row from per-run values of (baseline, measured), each given as (label, values)."""
    (baseline_label, baseline), (label, measured) = sides
    return Row(section, name, unit, label, Runs.of(measured), baseline_label, Runs.of(baseline), target)
