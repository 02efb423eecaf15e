"""3. Throughput against the database floor.

``threads`` client threads, each with its own channel and its own job, send SendEvent('update') as fast as
they can; the floor is the same count of bare database writes (bench/floor.py) from as many threads. Each
repetition runs one round of each, in an order that rotates, against the same database process.
"""

from __future__ import annotations

from contextlib import ExitStack

from .api import Api, JobHandle, connect
from .floor import Floor
from .harness import Environment
from .parallel import check_stop, run_parallel
from .plan import Plan
from .report import progress
from .stats import Comparison, Summary

SECTION = "3 throughput"
WARM_SEQ = 5


def _service_round(apis: list[Api], jobs: list[JobHandle], per_thread: int) -> tuple[float, list[float]]:
    def work(thread: int) -> list[float]:
        latencies = []
        for i in range(per_thread):
            check_stop()
            latencies.append(apis[thread].timed_update(jobs[thread], i)[0])
        return latencies

    results, elapsed = run_parallel(work, len(apis))
    return elapsed, [latency for part in results for latency in part]


def measure(env: Environment, plan: Plan) -> list[Comparison]:
    rates: dict[str, list[float]] = {"service": [], "floor": [], "floor_read": []}
    latencies: dict[str, list[float]] = {"service": [], "floor": [], "floor_read": []}
    events = plan.threads * plan.events_per_thread
    with ExitStack() as stack:
        server = env.start_server("bench_throughput")
        stack.callback(server.stop)
        apis = [stack.enter_context(connect(server.address, env.client_key)) for _ in range(plan.threads)]
        pipeline = apis[0].register_pipeline("bench-throughput")
        jobs = [
            apis[0].create_job(pipeline, {"bench": "throughput", "thread": t}) for t in range(plan.threads)
        ]
        for api, job in zip(apis, jobs, strict=True):
            api.start(job, WARM_SEQ)
        floor = Floor(env.uri, plan.threads)
        stack.callback(floor.close)
        rounds = {
            "service": lambda: _service_round(apis, jobs, plan.events_per_thread),
            "floor": lambda: floor.round(plan.events_per_thread, with_read=False),
            "floor_read": lambda: floor.round(plan.events_per_thread, with_read=True),
        }
        order = list(rounds)
        for rep in range(plan.throughput_reps):
            for name in order[rep % 3 :] + order[: rep % 3]:
                elapsed, samples = rounds[name]()
                rates[name].append(events / elapsed)
                latencies[name] += samples
        progress(
            f"throughput: {plan.throughput_reps} repetitions of {events} events "
            f"({plan.threads} threads x {plan.events_per_thread})"
        )

    threads = f"{plan.threads} threads"
    return [
        Comparison(
            SECTION,
            f"events/s, {threads}",
            "1/s",
            "floor: insert + CAS",
            Summary.of(rates["floor"]),
            "service: SendEvent",
            Summary.of(rates["service"]),
        ),
        Comparison(
            SECTION,
            f"event latency, {threads}",
            "ms",
            "floor: insert + CAS",
            Summary.of(latencies["floor"]).scaled(1000.0),
            "service: SendEvent",
            Summary.of(latencies["service"]).scaled(1000.0),
        ),
        Comparison(
            SECTION,
            f"events/s, {threads}",
            "1/s",
            "floor: find + insert + CAS",
            Summary.of(rates["floor_read"]),
            "service: SendEvent",
            Summary.of(rates["service"]),
        ),
    ]
