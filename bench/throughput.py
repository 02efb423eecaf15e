"""throughput: SendEvent against the database floors (bench/floor.py), in the same rounds.

``threads`` client threads, each with its own channel and ``jobs_per_thread`` jobs it cycles over, send
SendEvent('update') as fast as they can; the floors do the same count of events straight through pymongo
from as many threads over as many jobs, one by one, and batched as group commit writes them. The same
again with every thread on one hot job. The server's batch-size histogram (its metrics endpoint) gives
the events per batch of each service round. Beside the service, servers changed by one setting, each on
a database of its own (``SIDE_SERVERS``): one takes its queue at once
(``PIPELINEJOBS_EVENT_BATCH_GATHER_MS=0``: what waiting for the callers a batch answered, ADR 017,
changes), one does not relay the feed (``PIPELINEJOBS_FEED_RELAY=off``: the write path without the
feed's cost, against the same floors). Each repetition runs one round of each, in an order that
rotates, against the same database process. The CPU time each process used in a round, per event, says
which process the rate is waiting for: on this machine it is the database (see docs/performance.md).
"""

from __future__ import annotations

import socket
import urllib.request
from contextlib import ExitStack

from .api import Api, JobHandle, connect
from .cpu import CpuMeter
from .floor import STEPS, BatchedFloor, Floor
from .harness import Environment
from .parallel import check_stop, run_parallel
from .plan import Plan
from .report import progress
from .stats import Row, Runs, Target, paired_row, percentile

SECTION = "throughput"
DATABASE = "bench_throughput"
WARM_SEQ = 5
ONE_BY_ONE_TARGET = Target(1.0, at_least=True)  # issue 15: group commit beats the one-by-one floor
BATCHED_TARGET = Target(0.6, at_least=True)  # and reaches 0.6 of the database's batched limit
SPREAD = ("service", "service_at_once", "service_no_relay", *STEPS, "batched")  # 8 clients over 64 jobs
HOT = ("service_hot", "read_hot", "batched_hot")  # 8 clients on one job
ROUNDS = SPREAD + HOT
LABELS = {
    "service": "service: SendEvent",
    "service_at_once": "service, queue taken at once",
    "service_no_relay": "service, feed relay off",
    "bare": "floor: insert + CAS",
    "read": "floor: read + insert + CAS",
    "indexes": "floor + service indexes",
    "schema": "service's DB work, direct",
    "batched": "batched floor: service's DB work",
    "service_hot": "service: SendEvent",
    "read_hot": "floor: read + insert + CAS",
    "batched_hot": "batched floor: service's DB work",
}


def _service_round(
    apis: list[Api], jobs: list[list[JobHandle]], per_thread: int
) -> tuple[float, list[float]]:
    def work(thread: int) -> list[float]:
        latencies = []
        share = jobs[thread]
        for i in range(per_thread):
            check_stop()
            latencies.append(apis[thread].timed_update(share[i % len(share)], i)[0])
        return latencies

    results, elapsed = run_parallel(work, len(apis))
    return elapsed, [latency for part in results for latency in part]


def _started_jobs(apis: list[Api], plan: Plan) -> tuple[str, list[list[JobHandle]]]:
    """The bench's pipeline and each thread's share of RUNNING jobs, created through ``apis[0]``'s server."""
    pipeline = apis[0].register_pipeline("bench-throughput")
    jobs = [
        [
            apis[0].create_job(pipeline, {"bench": "throughput", "t": t, "j": j})
            for j in range(plan.jobs_per_thread)
        ]
        for t in range(plan.threads)
    ]
    for api, share in zip(apis, jobs, strict=True):
        for job in share:
            api.start(job, WARM_SEQ)
    return pipeline, jobs


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _batches(metrics_port: int) -> tuple[float, float]:
    """The server's batch-size histogram so far: (sum of sizes, number of batches)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    values = {}
    for line in text.splitlines():
        for name in ("pipelinejobs_event_batch_size_sum", "pipelinejobs_event_batch_size_count"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[1])
    return values.get("pipelinejobs_event_batch_size_sum", 0.0), values.get(
        "pipelinejobs_event_batch_size_count", 0.0
    )


# Servers beside the service, each on a database of its own, changed by one setting: what that setting
# costs or saves, side by side.
SIDE_SERVERS = {
    "service_at_once": {"PIPELINEJOBS_EVENT_BATCH_GATHER_MS": "0"},
    "service_no_relay": {"PIPELINEJOBS_FEED_RELAY": "off"},
}


def measure(env: Environment, plan: Plan) -> list[Row]:
    rates: dict[str, list[float]] = {name: [] for name in ROUNDS}
    p50s: dict[str, list[float]] = {name: [] for name in ROUNDS}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in ROUNDS}
    batch_sizes: dict[str, list[float]] = {"service": [], "service_hot": [], **{n: [] for n in SIDE_SERVERS}}
    events = plan.threads * plan.events_per_thread
    with ExitStack() as stack:
        ports = {name: _free_port() for name in ("service", *SIDE_SERVERS)}
        servers = {
            name: env.start_server(
                DATABASE if name == "service" else f"{DATABASE}_{name.removeprefix('service_')}",
                settings={"PIPELINEJOBS_METRICS_PORT": str(ports[name]), **SIDE_SERVERS.get(name, {})},
            )
            for name in ports
        }
        for server in servers.values():
            stack.callback(server.stop)
        apis = {
            name: [stack.enter_context(connect(server.address, env.client_key)) for _ in range(plan.threads)]
            for name, server in servers.items()
        }
        started = {name: _started_jobs(apis[name], plan) for name in servers}
        pipeline = started["service"][0]
        jobs = {name: share for name, (_, share) in started.items()}
        hot = apis["service"][0].create_job(pipeline, {"bench": "throughput", "hot": True})
        apis["service"][0].start(hot, WARM_SEQ)
        jobs["service_hot"] = [[hot] for _ in range(plan.threads)]
        floors: dict[str, Floor] = {
            step: Floor(env.uri, plan.threads, plan.jobs_per_thread, step) for step in STEPS
        }
        floors["batched"] = BatchedFloor(env.uri, plan.threads, plan.jobs_per_thread)
        floors["read_hot"] = Floor(env.uri, plan.threads, 1, "read", shared=True, tag="_hot")
        floors["batched_hot"] = BatchedFloor(env.uri, plan.threads, 1, shared=True)
        for floor in floors.values():
            stack.callback(floor.close)
        meters = {
            name: CpuMeter({"database": env.database_pid, "server": server.pid, "clients": None})
            for name, server in servers.items()
        }
        for rep in range(plan.throughput_reps):
            for name in ROUNDS[rep % len(ROUNDS) :] + ROUNDS[: rep % len(ROUNDS)]:
                side = "service" if name in ("service_hot", *floors) else name
                before = _batches(ports[side]) if name in batch_sizes else (0.0, 0.0)
                meters[side].start()
                if name in floors:
                    elapsed, latencies = floors[name].round(plan.events_per_thread)
                else:
                    elapsed, latencies = _service_round(apis[side], jobs[name], plan.events_per_thread)
                for process, ms in meters[side].per(events).items():
                    cpu[name].setdefault(process, []).append(ms)
                rates[name].append(events / elapsed)
                p50s[name].append(percentile(latencies, 50) * 1000)
                if name in batch_sizes:
                    after = _batches(ports[side])
                    batch_sizes[name].append((after[0] - before[0]) / max(after[1] - before[1], 1.0))
        progress(
            f"throughput: {plan.throughput_reps} repetitions of {events} events per round "
            f"({plan.threads} threads x {plan.events_per_thread}, {plan.threads * plan.jobs_per_thread} jobs"
            f" and one hot job)"
        )
    return _rows(plan, rates, p50s, cpu, batch_sizes)


def _rows(
    plan: Plan,
    rates: dict[str, list[float]],
    p50s: dict[str, list[float]],
    cpu: dict[str, dict[str, list[float]]],
    batch_sizes: dict[str, list[float]],
) -> list[Row]:
    spread = f"{plan.threads} clients, {plan.threads * plan.jobs_per_thread} jobs"
    hot = f"{plan.threads} clients, 1 job"
    targets = {"read": ONE_BY_ONE_TARGET, "batched": BATCHED_TARGET, "read_hot": ONE_BY_ONE_TARGET}
    rows = [
        paired_row(
            SECTION,
            f"events/s, {spread}",
            "1/s",
            ((LABELS[f], rates[f]), (LABELS["service"], rates["service"])),
            targets.get(f),
        )
        for f in (*STEPS, "batched")
    ]
    rows.append(
        paired_row(
            SECTION,
            f"events/s, {spread}",
            "1/s",
            ((LABELS["service_at_once"], rates["service_at_once"]), (LABELS["service"], rates["service"])),
        )
    )
    # What the write path does without the feed's relay (issue 12's cost, on issue 15's targets): info.
    rows += [
        paired_row(
            SECTION,
            f"events/s, {spread}",
            "1/s",
            ((LABELS[f], rates[f]), (LABELS["service_no_relay"], rates["service_no_relay"])),
        )
        for f in ("read", "batched")
    ]
    rows.append(
        paired_row(
            SECTION,
            f"database CPU per event, {spread}",
            "ms",
            (
                (LABELS["batched"], cpu["batched"]["database"]),
                (LABELS["service_no_relay"], cpu["service_no_relay"]["database"]),
            ),
        )
    )
    rows += [
        paired_row(
            SECTION,
            f"events/s, {hot}",
            "1/s",
            ((LABELS[f], rates[f]), (LABELS["service_hot"], rates["service_hot"])),
            targets.get(f),
        )
        for f in ("read_hot", "batched_hot")
    ]
    rows += [
        paired_row(
            SECTION,
            f"database CPU per event, {spread}",
            "ms",
            ((LABELS[f], cpu[f]["database"]), (LABELS["service"], cpu["service"]["database"])),
        )
        for f in ("read", "schema", "batched")
    ]
    rows += [
        paired_row(
            SECTION,
            f"database CPU per event, {hot}",
            "ms",
            ((LABELS[f], cpu[f]["database"]), (LABELS["service_hot"], cpu["service_hot"]["database"])),
        )
        for f in ("read_hot", "batched_hot")
    ]
    busy = [rate * ms / 1000 for rate, ms in zip(rates["service"], cpu["service"]["database"], strict=True)]
    rows += [
        Row(
            SECTION,
            f"events per batch, {spread}",
            "events",
            LABELS["service"],
            Runs.of(batch_sizes["service"]),
        ),
        Row(
            SECTION,
            f"events per batch, {spread}",
            "events",
            LABELS["service_at_once"],
            Runs.of(batch_sizes["service_at_once"]),
        ),
        Row(
            SECTION,
            f"events per batch, {spread}",
            "events",
            LABELS["service_no_relay"],
            Runs.of(batch_sizes["service_no_relay"]),
        ),
        Row(
            SECTION,
            f"events per batch, {hot}",
            "events",
            LABELS["service"],
            Runs.of(batch_sizes["service_hot"]),
        ),
        Row(SECTION, f"database cores busy, {spread}", "cores", LABELS["service"], Runs.of(busy)),
        Row(
            SECTION,
            f"server CPU per event, {spread}",
            "ms",
            LABELS["service"],
            Runs.of(cpu["service"]["server"]),
        ),
        Row(
            SECTION,
            f"server CPU per event, {hot}",
            "ms",
            LABELS["service"],
            Runs.of(cpu["service_hot"]["server"]),
        ),
        paired_row(
            SECTION,
            f"client CPU per event, {spread}",
            "ms",
            ((LABELS["read"], cpu["read"]["clients"]), (LABELS["service"], cpu["service"]["clients"])),
        ),
        paired_row(
            SECTION,
            f"event latency p50 under load, {spread}",
            "ms",
            ((LABELS["read"], p50s["read"]), (LABELS["service"], p50s["service"])),
        ),
    ]
    return rows
