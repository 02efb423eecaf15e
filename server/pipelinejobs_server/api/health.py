"""The standard gRPC health service, kept in step with the database.

A background task pings the database; the overall status ("") and each of our services turn
NOT_SERVING while it does not answer and SERVING again when it does, with no restart.

The task is ended by a flag, not by cancelling it. Cancelling a task while it is inside a pymongo
operation does not always end it: on Python 3.11 ``asyncio.wait_for`` returns the result instead of
raising when the cancellation meets an inner future that has just completed (CPython gh-86296, fixed in
3.12), and pymongo sends every command through ``wait_for``. Measured: 4 of 300 cancelled ping loops
kept running, 0 of 300 with that ``wait_for`` replaced. A loop stopped only by ``cancel()`` then ran for
ever, and the server's stop waited on it for ever (2 of 400 stops in the shutdown harness).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable

from grpc_health.v1 import health, health_pb2

from pipelinejobs_server.domain.errors import DatabaseUnavailable
from pipelinejobs_server.stopping import pause

log = logging.getLogger("pipelinejobs.health")

# A service name of its own for what the server finishes after it started (storage/upkeep.py): NOT_SERVING
# while indexes are being built or jobs counted, SERVING when done. The overall status ("") does not wait
# for it: the server serves every call meanwhile. `pipelinejobs health --json` shows both.
UPKEEP_SERVICE = "pipelinejobs.upkeep"


class DatabaseHealth:
    def __init__(
        self, ping: Callable[[], Awaitable[None]], services: Iterable[str], interval_s: float
    ) -> None:
        """``ping`` answers when the database does and raises DatabaseUnavailable when it does not."""
        # The asyncio servicer module is not declared in grpc_health's typing.
        self.servicer = health.aio.HealthServicer()  # type: ignore[attr-defined]
        self._ping = ping
        self._services = ("", *services)
        self._interval_s = interval_s
        self._serving: bool | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    async def check_once(self) -> bool:
        try:
            await self._ping()
        except DatabaseUnavailable:
            serving = False
        else:
            serving = True
        if serving != self._serving:
            status = (
                health_pb2.HealthCheckResponse.SERVING
                if serving
                else health_pb2.HealthCheckResponse.NOT_SERVING
            )
            for service in self._services:
                await self.servicer.set(service, status)
            if self._serving is not None:
                log.warning(
                    "database %s", "reachable again: SERVING" if serving else "unreachable: NOT_SERVING"
                )
            self._serving = serving
        return serving

    async def upkeep(self, done: bool) -> None:
        """Report the upkeep's progress under ``UPKEEP_SERVICE``."""
        status = (
            health_pb2.HealthCheckResponse.SERVING if done else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        if not self._stopping.is_set():
            await self.servicer.set(UPKEEP_SERVICE, status)

    @property
    def task(self) -> asyncio.Task[None] | None:
        """The background check, for the server's stop to wait on (with its own deadline)."""
        return self._task

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="database-health")

    async def _run(self) -> None:
        # Seen between two pings, the flag ends the loop however a cancellation fared inside the driver.
        while not self._stopping.is_set():
            await self.check_once()
            await pause(self._stopping, self._interval_s)

    async def stop(self) -> None:
        """Turn every status NOT_SERVING for good and tell the background check to end.

        Does not wait for it: a ping in flight to a database that stopped answering lasts up to the
        client's socket timeout (10 s). ``task`` ends after the ping in flight, if any.
        """
        self._stopping.set()
        await self.servicer.enter_graceful_shutdown()
