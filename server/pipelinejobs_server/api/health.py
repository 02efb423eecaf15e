"""The standard gRPC health service, kept in step with the database.

A background task pings the database; the overall status ("") and each of our services turn
NOT_SERVING while it does not answer and SERVING again when it does, with no restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable

from grpc_health.v1 import health, health_pb2

from pipelinejobs_server.domain.errors import DatabaseUnavailable

log = logging.getLogger("pipelinejobs.health")


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

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="database-health")

    async def _run(self) -> None:
        while True:
            await self.check_once()
            await asyncio.sleep(self._interval_s)

    async def stop(self) -> None:
        await self.servicer.enter_graceful_shutdown()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
