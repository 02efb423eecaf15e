"""profile: where the server's own CPU time goes on the SendEvent path (cProfile, from the stdlib).

A server runs under ``python -m cProfile`` while the throughput workload (``threads`` clients cycling over
their jobs) sends it events; when it stops, its statistics are grouped by who owns the code: our
packages, pymongo and bson, gRPC, protobuf, the asyncio event loop, the metrics library. Time spent
waiting in ``epoll`` (idle) and the process's start-up (imports) are left out of the shares. cProfile
slows Python code down a few times over, so only the shares mean something, not the rates. The top
functions go to ``bench/profile.txt``.
"""

from __future__ import annotations

import io
import pstats
from contextlib import ExitStack
from pathlib import Path

from .api import connect
from .harness import Environment
from .parallel import check_stop, run_parallel
from .plan import Plan
from .report import progress
from .stats import Row, Runs

SECTION = "profile"
DATABASE = "bench_profile"
REPORT = Path(__file__).resolve().parent / "profile.txt"
IDLE = "'poll' of 'select.epoll'"
# The process's start-up (imports, compiling regexes) is in the same file; it is not the path measured.
START_UP = (
    "builtins.compile",
    "marshal.loads",
    "_imp.",
    "builtins.exec",
    "__build_class__",
    "posix.stat",
    "importlib",
    "/re/_",
    "sre_",
)
OWNERS = (
    ("our code", ("pipelinejobs_server/", "pipelinejobs_client/")),
    # The server's only Python sockets are the driver's; gRPC's live in its C core.
    ("pymongo + bson, with its socket calls", ("/pymongo/", "/bson/", "pymongo.", "bson.", "_socket.socket")),
    ("gRPC", ("/grpc/", "grpc._cython", "cygrpc")),
    ("protobuf", ("/google/protobuf/", "google._upb")),
    ("prometheus_client", ("/prometheus_client/",)),
    # Context.run's own time is the compiled code run from loop callbacks, gRPC's Cython layer included.
    (
        "asyncio event loop + gRPC callbacks",
        ("/asyncio/", "selectors.py", "_asyncio", "_contextvars", "select.epoll"),
    ),
)


def owner(where: str) -> str:
    for name, marks in OWNERS:
        if any(mark in where for mark in marks):
            return name
    return "other (stdlib, builtins)"


def shares(stats: pstats.Stats) -> tuple[dict[str, float], float]:
    """Busy seconds by owner, and the seconds left out (idle in epoll, or starting up)."""
    busy: dict[str, float] = {}
    idle = 0.0
    for (filename, _, function), (_, _, own_time, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = f"{filename}:{function}"
        if IDLE in function or any(mark in where for mark in START_UP):
            idle += own_time
            continue
        name = owner(where)
        busy[name] = busy.get(name, 0.0) + own_time
    return busy, idle


def _load(env: Environment, plan: Plan, address: str) -> int:
    with ExitStack() as stack:
        apis = [stack.enter_context(connect(address, env.client_key)) for _ in range(plan.threads)]
        pipeline = apis[0].register_pipeline("bench-profile")
        jobs = [
            [
                apis[t].create_job(pipeline, {"bench": "profile", "t": t, "j": j})
                for j in range(plan.jobs_per_thread)
            ]
            for t in range(plan.threads)
        ]
        for api, share in zip(apis, jobs, strict=True):
            for job in share:
                api.start(job, 2)

        def work(thread: int) -> None:
            for i in range(plan.profile_events_per_thread):
                check_stop()
                apis[thread].update(jobs[thread][i % len(jobs[thread])], i)

        run_parallel(work, plan.threads)
    return plan.threads * plan.profile_events_per_thread


def measure(env: Environment, plan: Plan) -> list[Row]:
    output = env.root / "serve.prof"
    server = env.start_server(DATABASE, profile_to=output)
    events = _load(env, plan, server.address)
    server.stop()
    stats = pstats.Stats(str(output))
    busy, idle = shares(stats)
    total = sum(busy.values())
    text = io.StringIO()
    print(f"cProfile of one server, {events} SendEvents from {plan.threads} clients", file=text)
    print(f"busy {total:.2f} s; left out (idle in epoll, start-up) {idle:.2f} s", file=text)
    for name, seconds in sorted(busy.items(), key=lambda item: -item[1]):
        print(f"  {100 * seconds / total:5.1f}%  {name}", file=text)
    pstats.Stats(str(output), stream=text).sort_stats("tottime").print_stats(30)
    REPORT.write_text(text.getvalue())
    progress(f"profile: {events} events profiled; top functions in {REPORT}")
    label = f"server under cProfile, {events} events"
    return [
        Row(SECTION, f"share of busy server time: {name}", "%", label, Runs.of([100 * seconds / total]))
        for name, seconds in sorted(busy.items(), key=lambda item: -item[1])
    ]
