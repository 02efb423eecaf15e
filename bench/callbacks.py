"""callbacks: Agave callbacks through the HTTP shim against SendEvent straight to the server, same run.

The shim runs as its own process (``pipelinejobs_server shim``) in front of the server. ``threads`` HTTP
clients, each on one keep-alive connection, deliver callbacks for fresh jobs of their own: first a GET
for each of the thirteen Agave statuses that do not end a job (PENDING ... RUNNING ... ARCHIVING_FINISHED,
each once per job, so each is a new delivery), then POSTs of HEARTBEAT whose bodies all differ. Every
answer must say ``applied``: a replayed or refused callback would be cheaper and flatter the rate. The
direct rounds send as many SendEvent('update') from as many gRPC clients. Rounds alternate.
"""

from __future__ import annotations

import http.client
import json
from contextlib import ExitStack
from urllib.parse import urlencode

from pipelinejobs_server.shim.statuses import AGAVE

from .api import Api, JobHandle, connect
from .cpu import CpuMeter
from .harness import Environment, ShimProcess
from .parallel import check_stop, run_parallel
from .plan import Plan
from .report import progress
from .stats import Row, paired_row

SECTION = "callbacks"
DATABASE = "bench_callbacks"
# In table order: the queue statuses (update) while CREATED, RUNNING (run), then the updates while RUNNING.
GET_STATUSES = tuple(status for status, rule in AGAVE.items() if rule.event in ("update", "run"))


Delivery = tuple[JobHandle, str, bytes | None]


class Caller:
    """One HTTP client on one keep-alive connection to the shim."""

    def __init__(self, shim: ShimProcess) -> None:
        self.connection = http.client.HTTPConnection("127.0.0.1", shim.port, timeout=60)

    def callback(self, job: JobHandle, status: str, body: bytes | None) -> None:
        query = urlencode({"uuid": job.uuid, "token": job.token, "status": status})
        headers = {"Content-Type": "application/json"} if body is not None else {}
        self.connection.request(
            "GET" if body is None else "POST", f"/v1/callbacks/agave?{query}", body, headers
        )
        response = self.connection.getresponse()
        answer = response.read()
        if response.status != 200 or json.loads(answer).get("outcome") != "applied":
            raise RuntimeError(
                f"callback {status} for {job.uuid} was not applied: {response.status} {answer!r}"
            )

    def close(self) -> None:
        self.connection.close()


def _deliveries(job: JobHandle, posts: int, thread: int) -> list[Delivery]:
    plan: list[Delivery] = [(job, status, None) for status in GET_STATUSES]
    for n in range(posts):
        body = json.dumps({"status": "HEARTBEAT", "id": job.uuid, "thread": thread, "n": n}).encode()
        plan.append((job, "HEARTBEAT", body))
    return plan


def _prepare(apis: list[Api], pipeline: str, plan: Plan, rep: int) -> list[list[Delivery]]:
    """Each thread's deliveries, for fresh jobs (created here, before the round is timed)."""
    work = []
    for thread, api in enumerate(apis):
        jobs = [
            api.create_job(pipeline, {"bench": "callbacks", "rep": rep, "t": thread, "j": j})
            for j in range(plan.callback_jobs_per_thread)
        ]
        work.append([d for job in jobs for d in _deliveries(job, plan.callback_posts_per_job, thread)])
    return work


def _callback_round(callers: list[Caller], work: list[list[Delivery]]) -> float:
    for caller in callers:
        # The shim closes keep-alive connections idle for 5 s (uvicorn's default), as between rounds;
        # a request on such a connection fails. Closed here, each reconnects with its first request.
        caller.close()

    def deliver(thread: int) -> None:
        for job, status, body in work[thread]:
            check_stop()
            callers[thread].callback(job, status, body)

    _, elapsed = run_parallel(deliver, len(callers))
    return elapsed


def _direct_round(apis: list[Api], jobs: list[JobHandle], per_thread: int) -> float:
    def send(thread: int) -> None:
        for i in range(per_thread):
            check_stop()
            apis[thread].update(jobs[thread], i)

    _, elapsed = run_parallel(send, len(apis))
    return elapsed


def measure(env: Environment, plan: Plan) -> list[Row]:
    per_thread = plan.callback_jobs_per_thread * (len(GET_STATUSES) + plan.callback_posts_per_job)
    count = per_thread * plan.threads
    rates: dict[str, list[float]] = {"shim": [], "direct": []}
    cpu: dict[str, dict[str, list[float]]] = {"shim": {}, "direct": {}}
    with ExitStack() as stack:
        server = env.start_server(DATABASE)
        stack.callback(server.stop)
        shim = env.start_shim(server)
        stack.callback(shim.stop)
        apis = [stack.enter_context(connect(server.address, env.client_key)) for _ in range(plan.threads)]
        callers = [Caller(shim) for _ in range(plan.threads)]
        for caller in callers:
            stack.callback(caller.close)
        pipeline = apis[0].register_pipeline("bench-callbacks")
        direct_jobs = [apis[0].create_job(pipeline, {"bench": "direct", "t": t}) for t in range(plan.threads)]
        for api, job in zip(apis, direct_jobs, strict=True):
            api.start(job, 5)
        meter = CpuMeter(
            {"database": env.database_pid, "server": server.pid, "shim": shim.pid, "clients": None}
        )
        for rep in range(plan.callback_reps):
            work = _prepare(apis, pipeline, plan, rep)
            for name in ("shim", "direct") if rep % 2 == 0 else ("direct", "shim"):
                meter.start()
                if name == "shim":
                    elapsed = _callback_round(callers, work)
                else:
                    elapsed = _direct_round(apis, direct_jobs, per_thread)
                for process, ms in meter.per(count).items():
                    cpu[name].setdefault(process, []).append(ms)
                rates[name].append(count / elapsed)
        progress(f"callbacks: {plan.callback_reps} repetitions of {count} callbacks and {count} SendEvents")
    direct, through_shim = "SendEvent to the server", "Agave callbacks via the shim"
    rows = [
        paired_row(
            SECTION,
            f"events/s, {plan.threads} clients",
            "1/s",
            ((direct, rates["direct"]), (through_shim, rates["shim"])),
        )
    ]
    for process in ("database", "server", "shim", "clients"):
        rows.append(
            paired_row(
                SECTION,
                f"{process} CPU per event",
                "ms",
                ((direct, cpu["direct"][process]), (through_shim, cpu["shim"][process])),
            )
        )
    return rows
