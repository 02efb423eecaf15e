"""``python -m bench.watchers [--watchers 200] [--seconds 10] [--reps 3]``: what idle watches cost.

Opens ``--watchers`` WatchJob streams on one job over four channels against a ``serve`` process, waits
until each has its backlog (the job's one entry) so that all are idle, then reads the CPU time of the
server and of the database (``/proc/<pid>/stat``) and the database's query counter (``serverStatus``
opcounters) over ``--seconds``. The same window with no watch open is the baseline. docs/performance.md
(section 7) has the figures and what they say.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from pymongo import MongoClient

from pipelinejobs_client.api.v1 import job_service_pb2, job_service_pb2_grpc
from pipelinejobs_client.channels import call_metadata

from .api import connect
from .cpu import cpu_seconds
from .harness import Environment, ServerProcess
from .report import progress

CHANNELS = 4


def _counters(uri: str) -> tuple[int, int]:
    """The database's finds and getMores so far (the change stream's own reads are getMores)."""
    client: MongoClient[dict[str, Any]] = MongoClient(uri)
    try:
        counters = client.admin.command("serverStatus")["opcounters"]
        return int(counters["query"]), int(counters["getmore"])
    finally:
        client.close()


def _window(env: Environment, server: ServerProcess, seconds: float) -> dict[str, float]:
    before = (cpu_seconds(server.pid), cpu_seconds(env.database_pid), *_counters(env.uri))
    time.sleep(seconds)
    after = (cpu_seconds(server.pid), cpu_seconds(env.database_pid), *_counters(env.uri))
    return {
        "server_cpu_s": after[0] - before[0],
        "database_cpu_s": after[1] - before[1],
        "finds": after[2] - before[2],
        "getmores": after[3] - before[3],
    }


async def _idle_watches(
    address: str, key: str, job: str, count: int, measure: Callable[[], dict[str, float]]
) -> dict[str, float]:
    channels = [grpc.aio.insecure_channel(address) for _ in range(CHANNELS)]
    calls = []
    try:
        request = job_service_pb2.WatchJobRequest(uuid=job)
        for n in range(count):
            stub = job_service_pb2_grpc.JobServiceStub(channels[n % CHANNELS])
            calls.append(stub.WatchJob(request, metadata=call_metadata(key)))
        for call in calls:
            await call.read()  # the backlog: the job's create entry; the watch is idle from here on
        await asyncio.sleep(1.0)
        return await asyncio.to_thread(measure)
    finally:
        for call in calls:
            call.cancel()
        for channel in channels:
            await channel.close(grace=None)


def measure(watchers: int, seconds: float, reps: int) -> dict[str, list[dict[str, float]]]:
    results: dict[str, list[dict[str, float]]] = {"idle": [], "watched": []}
    with Environment() as env:
        # All watches use the benchmark's one key: above the default cap of a key (100), within the
        # process's (1000).
        server = env.start_server("watchers", settings={"PIPELINEJOBS_MAX_WATCHES_PER_KEY": str(watchers)})
        with connect(server.address, env.client_key) as api:
            job = api.create_job(api.register_pipeline("watchers"), {"bench": "watchers"}).uuid
        for rep in range(reps):
            progress(f"rep {rep + 1}/{reps}: no watch for {seconds:g} s")
            results["idle"].append(_window(env, server, seconds))
            progress(f"rep {rep + 1}/{reps}: {watchers} idle watches for {seconds:g} s")
            results["watched"].append(
                asyncio.run(
                    _idle_watches(
                        server.address,
                        env.client_key,
                        job,
                        watchers,
                        lambda: _window(env, server, seconds),
                    )
                )
            )
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.watchers", description=__doc__)
    parser.add_argument("--watchers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    options = parser.parse_args(argv)
    results = measure(options.watchers, options.seconds, options.reps)
    print(
        f"{'':<10} {'server CPU s':>14} {'database CPU s':>16} {'finds':>7} {'getMores':>9}"
        f"   (per {options.seconds:g} s; medians)"
    )
    for name, runs in results.items():
        label = "no watch" if name == "idle" else f"{options.watchers} idle"
        cells = [statistics.median(run[field] for run in runs) for field in runs[0]]
        each = " ".join(f"{run['server_cpu_s']:.2f}/{run['database_cpu_s']:.2f}" for run in runs)
        figures = f"{cells[0]:>14.2f} {cells[1]:>16.2f} {cells[2]:>7.0f} {cells[3]:>9.0f}"
        print(f"{label:<10} {figures}   runs: {each}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
