"""``python -m bench [--quick] [--only SECTIONS] [--output PATH]``: measure, print the table, write JSON."""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from . import collection, history, throughput
from .harness import Environment
from .parallel import STOP
from .plan import FULL, QUICK, Plan
from .report import header, machine, progress, table, write_json
from .stats import Comparison

Section = Callable[[Environment, Plan], list[Comparison]]
SECTIONS: dict[str, Section] = {
    "history": history.measure,
    "collection": collection.measure,
    "throughput": throughput.measure,
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~30 s smoke run with small sizes")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON results")
    options = parser.parse_args(argv)
    unknown = set(options.only.split(",")) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    return options


def _interrupt(signum: int, frame: FrameType | None) -> None:
    # SIGTERM and SIGHUP take the same way out as Ctrl-C, so every process started here is stopped.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main(argv: Sequence[str] | None = None) -> int:
    options = parse(argv)
    plan = QUICK if options.quick else FULL
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # under nohup, a hangup stays ignored
            signal.signal(signum, _interrupt)
    info = machine()
    print(header(info, plan.mode), flush=True)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    comparisons: list[Comparison] = []
    durations: dict[str, float] = {}
    try:
        with Environment() as env:
            progress(f"database at {env.uri}, data in {env.root}")
            for name in options.only.split(","):
                section_started = time.perf_counter()
                comparisons += SECTIONS[name](env, plan)
                durations[name] = time.perf_counter() - section_started
    except KeyboardInterrupt:
        STOP.set()
        print("\ninterrupted: database and servers stopped, temp dir removed", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started

    print()
    print(table(comparisons))
    print(
        "\nratio = measured / baseline; sides alternate call by call (sections 1-2) or round by round (3);"
        "\nevents/s rows summarise the rates of the repetitions, latency rows every call."
        f"\nlatency target: median ratio <= {plan.target_ratio:g}. total {elapsed:.0f} s"
    )
    write_json(
        options.output,
        {
            "started_at": started_at.isoformat(),
            "duration_s": elapsed,
            "section_durations_s": durations,
            "mode": plan.mode,
            "machine": info,
            "plan": plan.as_dict(),
            "comparisons": [c.as_dict() for c in comparisons],
        },
    )
    print(f"results: {options.output}")
    return 1 if any(c.verdict == "OVER" for c in comparisons) else 0


if __name__ == "__main__":
    sys.exit(main())
