"""feed: the event feed's lag on a live watch, and what the feed costs the write path (ADR 015).

Lag: SendEvent('update') open loop at ``RATE`` per second (futures, on a fixed schedule) while a
WatchEvents stream from now reads the feed on the same server; an event's lag runs from the moment its
SendEvent was acknowledged to the moment its entry arrived on the watch. p50 and p99 per repetition,
beside the target (p99 <= 250 ms at 100 events/s).

Cost: the throughput workload (bench/throughput.py: ``threads`` clients sending updates as fast as they
can) against three servers on one database process, round after round in a rotating order: one that
does not relay (``PIPELINEJOBS_FEED_RELAY=off``, its own database: nothing is ever fed there), one that
relays (its own database), and the same one with a WatchEvents stream reading everything meanwhile.
The writers mark each entry for the feed in all three (ADR 015): that part of the cost is in the
baseline too. Beside the rates, the database's CPU time per event of each round, counted until the
feed holds the round's entries (the relay's catch-up after the writers stopped is its cost too): on a
machine other work loads, CPU per event moves far less than the rates do. And the database commands
per event (bench/commands.py): what the relay's rounds add in round trips. And in the same rounds, the
bound (bench/feed_floor.py): group commit's batched floor with and without the least work a copied feed
needs, the relay's three writes per round and none of its reads; and that copy by parts, each beside the
floor: the history without marks, the insert and head without marks (what a relay that needs no marks
costs at the least), the marks cleared alone, and the insert and head of entries read from the history's
change stream (a relay that finds them so). The two without marks also beside the history without marks:
what they cost against a write path with no feed at all.
"""

from __future__ import annotations

import base64
import threading
import time
from contextlib import ExitStack
from typing import Any

import grpc

from pipelinejobs_client.api.v1 import feed_pb2, job_pb2

from .api import TIMEOUT_S, Api, JobHandle, connect, send_request
from .commands import CommandMeter
from .cpu import CpuMeter
from .feed_floor import FEED_COPY, NO_COPY, PARTS, Copy, FedFloor
from .harness import Environment
from .latency import open_loop
from .plan import Plan
from .report import progress
from .stats import Row, Runs, Target, paired_row, percentile
from .throughput import WARM_SEQ, _service_round

SECTION = "feed"
RATE = 100.0
LAG_TARGET_MS = 250.0
COST_TARGET = Target(0.9, at_least=True)  # at most 10 % fewer events/s
FLOORS: dict[str, Copy] = {"floor": NO_COPY, "floor + feed copy": FEED_COPY, **PARTS}
# The history without marks alone, and the floors that copy without marks (the relays that need none).
UNMARKED = next(name for name, copy in FLOORS.items() if not copy.marked and not copy.per_round)
MARKLESS = [name for name, copy in FLOORS.items() if not copy.marked and copy.per_round]


class Watch:
    """A WatchEvents stream from now on its own thread, noting when each entry (by uuid) arrived."""

    def __init__(self, api: Api) -> None:
        self.arrived: dict[str, float] = {}
        self.error: grpc.RpcError | None = None
        self._call = api.jobs.WatchEvents(
            feed_pb2.WatchEventsRequest(from_now=True), metadata=api.metadata, timeout=3600
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()
        if not self._ready.wait(TIMEOUT_S):
            raise RuntimeError("the watch did not start")

    def _read(self) -> None:
        try:
            for reply in self._call:
                if reply.WhichOneof("item") == "entry":
                    self.arrived[reply.entry.uuid] = time.perf_counter()
                self._ready.set()  # the first reply of a watch from now is its starting bookmark
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.CANCELLED:
                self.error = error

    def close(self) -> None:
        self._call.cancel()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=10)


def _lags(api: Api, jobs: list[JobHandle], count: int, rep: int) -> list[float]:
    """Seconds from each event's acknowledgement to its arrival on a live watch, ``count`` at RATE/s."""
    acknowledged: dict[str, float] = {}
    watch = Watch(api)
    try:

        def start(index: int) -> grpc.Future[Any]:
            request = send_request(
                jobs[index % len(jobs)], job_pb2.JOB_EVENT_UPDATE, {"n": index, "rep": rep}
            )
            future: grpc.Future[Any] = api.jobs.SendEvent.future(
                request, metadata=api.metadata, timeout=TIMEOUT_S
            )

            def note(done: grpc.Future[Any]) -> None:
                if done.exception() is None:
                    acknowledged[done.result().event.uuid] = time.perf_counter()

            future.add_done_callback(note)
            return future

        # First, the feed catches up with what came before (the throughput rounds): an entry sent now
        # arrives only after every entry fed before it.
        marker = start(-1).result(timeout=TIMEOUT_S).event.uuid
        deadline = time.perf_counter() + 60
        while marker not in watch.arrived and time.perf_counter() < deadline:
            time.sleep(0.05)
        acknowledged.clear()
        open_loop(start, RATE, count)
        deadline = time.perf_counter() + 30
        while (
            any(uuid not in watch.arrived for uuid in list(acknowledged)) and time.perf_counter() < deadline
        ):
            time.sleep(0.05)
    finally:
        watch.close()
    missing = [uuid for uuid in list(acknowledged) if uuid not in watch.arrived]
    if missing:
        raise RuntimeError(f"{len(missing)} acknowledged events never reached the watch ({watch.error})")
    # An entry can arrive before its SendEvent's reply is read here: the lag is then 0, not negative.
    return [max(watch.arrived[uuid] - at, 0.0) for uuid, at in acknowledged.items()]


def _jobs(api: Api, tag: str, threads: int, per_thread: int) -> list[list[JobHandle]]:
    pipeline = api.register_pipeline(f"bench-feed-{tag}")
    jobs = [
        [api.create_job(pipeline, {"bench": "feed", "tag": tag, "t": t, "j": j}) for j in range(per_thread)]
        for t in range(threads)
    ]
    for share in jobs:
        for job in share:
            api.start(job, WARM_SEQ)
    return jobs


def _position(cursor: str) -> tuple[str, int]:
    """A feed cursor's epoch and position (``base64url("pjf1:<epoch>:<position>")``, ADR 015)."""
    _, epoch, position = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode().split(":")
    return epoch, int(position)


def _cursor(epoch: str, position: int) -> str:
    return base64.urlsafe_b64encode(f"pjf1:{epoch}:{position}".encode()).decode().rstrip("=")


def _head(api: Api) -> tuple[str, int]:
    """The feed's epoch and newest position, read page by page (once, while the feed is small)."""
    after = ""
    while True:
        reply = api.jobs.ListEvents(
            feed_pb2.ListEventsRequest(after_cursor=after, page_size=1000),
            metadata=api.metadata,
            timeout=TIMEOUT_S,
        )
        after = reply.next_cursor or after
        if reply.caught_up:
            return _position(after)


def _until_fed(api: Api, epoch: str, position: int) -> None:
    """Wait until the feed holds ``position``: one entry asked for each time, the cheapest read (a
    cursor past the feed's head is refused as ahead of it: not there yet)."""
    deadline = time.perf_counter() + 120
    request = feed_pb2.ListEventsRequest(after_cursor=_cursor(epoch, position - 1), page_size=1)
    while True:
        try:
            if api.jobs.ListEvents(request, metadata=api.metadata, timeout=TIMEOUT_S).entries:
                return
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.FAILED_PRECONDITION:
                raise
        if time.perf_counter() > deadline:
            raise RuntimeError(f"the feed did not reach position {position}")
        time.sleep(0.02)


def measure(env: Environment, plan: Plan) -> list[Row]:
    rounds = ("no relay", "relay", "relay + watcher", *FLOORS)
    rates: dict[str, list[float]] = {name: [] for name in rounds}
    cpu: dict[str, list[float]] = {name: [] for name in rounds}
    commands: dict[str, list[float]] = {name: [] for name in rounds}
    lag_runs: dict[int, list[float]] = {50: [], 99: []}
    events = plan.threads * plan.events_per_thread
    lag_count = 300 if plan.mode == "quick" else 1500
    with ExitStack() as stack:
        plain = env.start_server("bench_feed_off", settings={"PIPELINEJOBS_FEED_RELAY": "off"})
        stack.callback(plain.stop)
        relaying = env.start_server("bench_feed_on")
        stack.callback(relaying.stop)
        servers = {"no relay": plain, "relay": relaying, "relay + watcher": relaying}
        apis = {
            name: [stack.enter_context(connect(server.address, env.client_key)) for _ in range(plan.threads)]
            for name, server in (("off", plain), ("on", relaying))
        }
        jobs = {name: _jobs(apis[name][0], name, plan.threads, plan.jobs_per_thread) for name in apis}
        watcher_api = stack.enter_context(connect(relaying.address, env.client_key))
        # The feed of the relaying server holds each job's first WARM_SEQ entries once it caught up.
        epoch, _ = _head(watcher_api)
        head = sum(len(share) for share in jobs["on"]) * WARM_SEQ
        _until_fed(watcher_api, epoch, head)
        floors = {
            name: FedFloor(env.uri, plan.threads, plan.jobs_per_thread, copy) for name, copy in FLOORS.items()
        }
        for floor in floors.values():
            stack.callback(floor.close)
        meter = CpuMeter({"database": env.database_pid})
        command_meter = CommandMeter(env.uri)
        stack.callback(command_meter.close)
        for rep in range(plan.throughput_reps):
            for name in rounds[rep % len(rounds) :] + rounds[: rep % len(rounds)]:
                watch = Watch(watcher_api) if name == "relay + watcher" else None
                meter.start()
                command_meter.start()
                try:
                    if name in floors:
                        elapsed, _ = floors[name].round(plan.events_per_thread)
                    elif servers[name] is plain:
                        elapsed, _ = _service_round(apis["off"], jobs["off"], plan.events_per_thread)
                    else:
                        elapsed, _ = _service_round(apis["on"], jobs["on"], plan.events_per_thread)
                        head += events
                        _until_fed(watcher_api, epoch, head)
                finally:
                    if watch is not None:
                        watch.close()
                cpu[name].append(meter.per(events)["database"])
                commands[name].append(command_meter.per(events)["all"])
                rates[name].append(events / elapsed)
        lag_jobs = [job for share in jobs["on"] for job in share]
        for rep in range(max(plan.throughput_reps // 2, 1)):
            lags = _lags(apis["on"][0], lag_jobs, lag_count, rep)
            for q in lag_runs:
                lag_runs[q].append(percentile(lags, q) * 1000)
        progress(
            f"feed: {plan.throughput_reps} repetitions of {events} events per round; "
            f"lag over {lag_count} events at {RATE:g}/s, {len(lag_runs[99])} repetitions"
        )
    clients = f"{plan.threads} clients, {plan.threads * plan.jobs_per_thread} jobs"
    target = [LAG_TARGET_MS] * len(lag_runs[99])
    return [
        paired_row(
            SECTION,
            f"events/s, {clients}",
            "1/s",
            (("no relay", rates["no relay"]), ("relay", rates["relay"])),
            COST_TARGET,
        ),
        paired_row(
            SECTION,
            f"events/s, {clients}",
            "1/s",
            (("no relay", rates["no relay"]), ("relay + a watcher", rates["relay + watcher"])),
            COST_TARGET,
        ),
        paired_row(
            SECTION,
            f"database CPU per event, {clients}",
            "ms",
            (("no relay", cpu["no relay"]), ("relay", cpu["relay"])),
        ),
        paired_row(
            SECTION,
            f"database CPU per event, {clients}",
            "ms",
            (("no relay", cpu["no relay"]), ("relay + a watcher", cpu["relay + watcher"])),
        ),
        *_bound_rows(rates, cpu, clients),
        paired_row(
            SECTION,
            f"database commands per event, {clients}",
            "commands",
            (("no relay", commands["no relay"]), ("relay", commands["relay"])),
        ),
        Row(
            SECTION, "lag, acknowledged to watched, p50", "ms", f"{RATE:g}/s open loop", Runs.of(lag_runs[50])
        ),
        paired_row(
            SECTION,
            "lag, acknowledged to watched, p99",
            "ms",
            (("target", target), (f"{RATE:g}/s open loop", lag_runs[99])),
            Target(1.0),
        ),
    ]


def _bound_rows(rates: dict[str, list[float]], cpu: dict[str, list[float]], clients: str) -> list[Row]:
    """Each floor beside the plain one; the rates of those without marks beside a history without them."""
    by_floor = [("floor", name) for name in FLOORS if name != "floor"]
    pairs = [(rates, "events/s", "1/s", pair) for pair in by_floor + [(UNMARKED, name) for name in MARKLESS]]
    pairs += [(cpu, "database CPU per event", "ms", pair) for pair in by_floor]
    return [
        paired_row(SECTION, f"bound: batched floor's {figure}, {clients}", unit, ((a, runs[a]), (b, runs[b])))
        for runs, figure, unit, (a, b) in pairs
    ]
