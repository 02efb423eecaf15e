"""Summaries of samples (median, p90) and the comparisons the report prints."""

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


@dataclass(frozen=True)
class Summary:
    n: int
    median: float
    p90: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Summary:
        if not samples:
            return cls(0, math.nan, math.nan, math.nan, math.nan)
        return cls(
            len(samples), statistics.median(samples), percentile(samples, 90), min(samples), max(samples)
        )

    def scaled(self, factor: float) -> Summary:
        return Summary(
            self.n, self.median * factor, self.p90 * factor, self.minimum * factor, self.maximum * factor
        )

    def as_dict(self) -> dict[str, Any]:
        return {"n": self.n, "median": self.median, "p90": self.p90, "min": self.minimum, "max": self.maximum}


@dataclass(frozen=True)
class Comparison:
    """Two figures measured side by side; the ratio is ``measured / baseline``.

    ``target`` is the largest acceptable ratio of the medians (None: reported, not judged).
    """

    section: str
    name: str
    unit: str
    baseline_label: str
    baseline: Summary
    measured_label: str
    measured: Summary
    target: float | None = None

    @property
    def ratio_median(self) -> float:
        return _ratio(self.measured.median, self.baseline.median)

    @property
    def ratio_p90(self) -> float:
        return _ratio(self.measured.p90, self.baseline.p90)

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        if math.isnan(self.ratio_median):
            return "n/a"
        return "ok" if self.ratio_median <= self.target else "OVER"

    def as_dict(self) -> dict[str, Any]:
        return {
            "section": self.section,
            "name": self.name,
            "unit": self.unit,
            "baseline": {"label": self.baseline_label, **self.baseline.as_dict()},
            "measured": {"label": self.measured_label, **self.measured.as_dict()},
            "ratio_median": self.ratio_median,
            "ratio_p90": self.ratio_p90,
            "target_max_ratio": self.target,
            "verdict": self.verdict,
        }


def _ratio(measured: float, baseline: float) -> float:
    if baseline == 0 or math.isnan(baseline) or math.isnan(measured):
        return math.nan
    return measured / baseline
