"""throughput: SendEvent against the database floor (bench/floor.py), in the same rounds.

``threads`` client threads, each with its own channel and ``jobs_per_thread`` jobs it cycles over, send
SendEvent('update') as fast as they can; the floors do the same count of events straight through pymongo
from as many threads over as many jobs. Each repetition runs one round of each, in an order that rotates,
against the same database process. The CPU time each process used in a round, per event, says which
process the rate is waiting for: on this machine it is the database (see docs/performance.md).
"""

from __future__ import annotations

from contextlib import ExitStack

from .api import Api, JobHandle, connect
from .cpu import CpuMeter
from .floor import STEPS, Floor
from .harness import Environment
from .parallel import check_stop, run_parallel
from .plan import Plan
from .report import progress
from .stats import Row, Runs, Target, paired_row, percentile

SECTION = "throughput"
DATABASE = "bench_throughput"
WARM_SEQ = 5
TARGET = Target(0.5, at_least=True)
ROUNDS = ("service", *STEPS)
LABELS = {
    "service": "service: SendEvent",
    "bare": "floor: insert + CAS",
    "read": "floor + read",
    "indexes": "floor + read + service indexes",
    "schema": "service's DB work, direct",
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


def measure(env: Environment, plan: Plan) -> list[Row]:
    rates: dict[str, list[float]] = {name: [] for name in ROUNDS}
    p50s: dict[str, list[float]] = {name: [] for name in ROUNDS}
    cpu: dict[str, dict[str, list[float]]] = {name: {} for name in ROUNDS}
    events = plan.threads * plan.events_per_thread
    with ExitStack() as stack:
        server = env.start_server(DATABASE)
        stack.callback(server.stop)
        apis = [stack.enter_context(connect(server.address, env.client_key)) for _ in range(plan.threads)]
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
        floors = {step: Floor(env.uri, plan.threads, plan.jobs_per_thread, step) for step in STEPS}
        for floor in floors.values():
            stack.callback(floor.close)
        meter = CpuMeter({"database": env.database_pid, "server": server.pid, "clients": None})
        for rep in range(plan.throughput_reps):
            for name in ROUNDS[rep % len(ROUNDS) :] + ROUNDS[: rep % len(ROUNDS)]:
                meter.start()
                if name == "service":
                    elapsed, latencies = _service_round(apis, jobs, plan.events_per_thread)
                else:
                    elapsed, latencies = floors[name].round(plan.events_per_thread)
                for process, ms in meter.per(events).items():
                    cpu[name].setdefault(process, []).append(ms)
                rates[name].append(events / elapsed)
                p50s[name].append(percentile(latencies, 50) * 1000)
        progress(
            f"throughput: {plan.throughput_reps} repetitions of {events} events per round "
            f"({plan.threads} threads x {plan.events_per_thread}, {plan.threads * plan.jobs_per_thread} jobs)"
        )
    return _rows(plan, rates, p50s, cpu)


def _rows(
    plan: Plan,
    rates: dict[str, list[float]],
    p50s: dict[str, list[float]],
    cpu: dict[str, dict[str, list[float]]],
) -> list[Row]:
    service = (LABELS["service"], rates["service"])
    clients = f"{plan.threads} clients, {plan.threads * plan.jobs_per_thread} jobs"
    rows = [
        paired_row(
            SECTION,
            f"events/s, {clients}",
            "1/s",
            ((LABELS[step], rates[step]), service),
            TARGET if step == "bare" else None,
        )
        for step in STEPS
    ]
    rows += [
        paired_row(
            SECTION,
            "database CPU per event",
            "ms",
            ((LABELS[step], cpu[step]["database"]), (LABELS["service"], cpu["service"]["database"])),
        )
        for step in STEPS
    ]
    busy = [rate * ms / 1000 for rate, ms in zip(rates["service"], cpu["service"]["database"], strict=True)]
    rows += [
        Row(SECTION, "database cores busy", "cores", LABELS["service"], Runs.of(busy)),
        Row(SECTION, "server CPU per event", "ms", LABELS["service"], Runs.of(cpu["service"]["server"])),
        paired_row(
            SECTION,
            "client CPU per event",
            "ms",
            ((LABELS["bare"], cpu["bare"]["clients"]), (LABELS["service"], cpu["service"]["clients"])),
        ),
        paired_row(
            SECTION,
            "event latency p50 under load",
            "ms",
            ((LABELS["bare"], p50s["bare"]), (LABELS["service"], p50s["service"])),
        ),
    ]
    return rows
