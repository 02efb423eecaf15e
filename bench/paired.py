"""Side-by-side sampling: two operations, alternated, so both see the same machine at the same moment.

Measuring one figure after the other lets drift (caches warming, the database's own background work, another
process on the machine) pass for a difference between them; alternating call by call cancels it.
"""

from __future__ import annotations

from collections.abc import Callable

from .parallel import check_stop

Timed = Callable[[int], float]  # does one call for sample i and returns its duration in seconds


def paired(baseline: Timed, measured: Timed, count: int) -> tuple[list[float], list[float]]:
    """``count`` samples of each, alternating which of the two goes first."""
    base: list[float] = []
    other: list[float] = []
    for i in range(count):
        check_stop()
        if i % 2 == 0:
            base.append(baseline(i))
            other.append(measured(i))
        else:
            other.append(measured(i))
            base.append(baseline(i))
    return base, other
