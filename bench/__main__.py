"""``python -m bench [--quick] [--only SECTIONS] [--output PATH]``: measure, print the table, write JSON."""

from __future__ import annotations

import argparse
import dataclasses
import signal
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

from . import (
    callbacks,
    collection,
    counts,
    feed,
    history,
    latency,
    listing,
    profiling,
    state_changes,
    throughput,
)
from .harness import Environment
from .parallel import STOP
from .plan import FULL, QUICK, Plan
from .report import header, machine, progress, table, write_json
from .stats import Row

Section = Callable[[Environment, Plan], list[Row]]
SECTIONS: dict[str, Section] = {
    "throughput": throughput.measure,
    "state-changes": state_changes.measure,
    "latency": latency.measure,
    "history": history.measure,
    "collection": collection.measure,
    "list": listing.measure,
    "counts": counts.measure,
    "callbacks": callbacks.measure,
    "feed": feed.measure,
    "profile": profiling.measure,
}
DEFAULT_OUTPUT = Path(__file__).resolve().parent / "results.json"


def parse(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a ~1 minute smoke run with small sizes")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections to run (default: all of {', '.join(SECTIONS)})",
    )
    parser.add_argument(
        "--large-jobs",
        type=int,
        help="jobs of the larger seeded database (collection, list, counts): 1000000 for ADR 004's run",
    )
    parser.add_argument(
        "--without-histories",
        action="store_true",
        help="seed the jobs without their history entries (a million jobs' take about an hour to seed here)",
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the JSON results")
    parser.add_argument(
        "--strict", action="store_true", help="exit 1 when a row misses its target (default: report it only)"
    )
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
    if options.large_jobs:
        plan = dataclasses.replace(plan, large_jobs=options.large_jobs)
    if options.without_histories:
        plan = dataclasses.replace(plan, seeded_histories=False)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is not signal.SIG_IGN:  # under nohup, a hangup stays ignored
            signal.signal(signum, _interrupt)
    info = machine()
    print(header(info, plan.mode), flush=True)
    started_at = datetime.now(UTC)
    started = time.perf_counter()
    rows: list[Row] = []
    durations: dict[str, float] = {}
    failed: dict[str, str] = {}
    try:
        with Environment() as env:
            progress(f"database at {env.shown_uri}, data in {env.root}")
            for name in options.only.split(","):
                section_started = time.perf_counter()
                try:
                    rows += SECTIONS[name](env, plan)
                except Exception as error:  # one failed section must not lose the others
                    traceback.print_exc()
                    failed[name] = f"{type(error).__name__}: {error}"
                    STOP.clear()  # a failed worker set it; the next section starts afresh
                durations[name] = time.perf_counter() - section_started
                progress(f"{name}: {'FAILED' if name in failed else 'done'} in {durations[name]:.0f} s")
    except KeyboardInterrupt:
        STOP.set()
        print("\ninterrupted: database and servers stopped, temp dir removed", file=sys.stderr)
        return 130
    elapsed = time.perf_counter() - started

    print()
    print(table(rows))
    durations_text = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in durations.items())
    print(
        "\nmedian and range (lowest-highest) over the runs; ratio = measured / baseline, run by run;"
        "\nthe sides of a run alternate call by call (latency pairs) or round by round (rates)."
        f"\ntotal {elapsed:.0f} s: {durations_text}"
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
            "rows": [row.as_dict() for row in rows],
            "failed_sections": failed,
        },
    )
    print(f"results: {options.output}")
    missed = [f"{row.section}: {row.name}" for row in rows if row.verdict == "MISSED"]
    if missed:
        print(f"targets missed: {'; '.join(missed)} (docs/performance.md says why)")
    for name, reason in failed.items():
        print(f"section {name} FAILED: {reason}")
    return 1 if failed or (missed and options.strict) else 0


if __name__ == "__main__":
    sys.exit(main())
