"""Stops that end on time: one deadline for a whole stop, and no task awaited for ever.

A task inside a pymongo call cannot always be stopped by cancelling it: on Python 3.11
``asyncio.wait_for`` returns the result instead of raising when the cancellation meets an inner future
that has just completed (CPython gh-86296, fixed in 3.12), and pymongo sends every command through
``wait_for`` (measured: 4 of 300 cancelled ping loops kept running). And a task inside a call to a
database that stopped answering lasts for the socket timeout (10 s), cancelled or not. So the server's
own loops end by flags (api/health.py, storage/notifications.py), and whoever stops something waits
for it with a deadline (``Budget``), then abandons what is left, logged, rather than wait on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any, TypeVar

log = logging.getLogger("pipelinejobs.server")

LEFTOVER_S = 1.0
"""How long the tasks still running when a program ends get, after they were cancelled."""

T = TypeVar("T")


async def pause(stopping: asyncio.Event, seconds: float) -> None:
    """A flag-ended loop's pause between two rounds: ``seconds``, or until ``stopping`` is set."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stopping.wait()


class Budget:
    """One deadline for a whole stop; each step waits until its own cap or the deadline, then moves on."""

    def __init__(self, total_s: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._started = self._loop.time()
        self._deadline = self._started + total_s
        self.overruns: list[str] = []

    def _timeout(self, cap_s: float) -> float:
        return max(0.0, min(cap_s, self._deadline - self._loop.time()))

    async def run(self, step: str, work: Awaitable[None], cap_s: float) -> bool:
        return await self.wait(step, [asyncio.ensure_future(work)], cap_s)

    async def wait(self, step: str, tasks: Iterable[asyncio.Future[None]], cap_s: float) -> bool:
        """Wait (never cancel) until the tasks are done, for up to ``cap_s``; False if some are not."""
        tasks = list(tasks)
        pending = {task for task in tasks if not task.done()}
        if pending:
            timeout = self._timeout(cap_s)
            _, pending = await asyncio.wait(pending, timeout=timeout) if timeout > 0 else (set(), pending)
            if pending:
                self.overruns.append(step)
                log.warning(
                    "stop: %s still running after %.2f s; abandoned: %s",
                    step,
                    timeout,
                    ", ".join(_name(task) for task in pending),
                )
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.warning("stop: %s failed: %r", step, task.exception())
        return not pending

    async def cancel(self, step: str, tasks: Iterable[asyncio.Future[None]], cap_s: float) -> bool:
        tasks = [task for task in tasks if not task.done()]
        for task in tasks:
            task.cancel()
        return await self.wait(f"{step} (cancelled)", tasks, cap_s)

    def done(self) -> None:
        took = self._loop.time() - self._started
        if self.overruns:
            log.warning("stopped in %.2f s; abandoned: %s", took, "; ".join(self.overruns))
        else:
            log.debug("stopped in %.2f s", took)


def _name(task: asyncio.Future[None]) -> str:
    return task.get_name() if isinstance(task, asyncio.Task) else repr(task)


async def settle_tasks(timeout_s: float) -> list[str]:
    """Cancel the loop's other tasks and wait up to ``timeout_s`` for them; the names of those left.

    For the owner of a loop, after the servers on it stopped: ``asyncio.run`` would wait for every
    leftover task without a limit, and one whose cancellation the driver lost (api/health.py) would hold
    the process for as long as its database call lasts.
    """
    current = asyncio.current_task()
    tasks = [task for task in asyncio.all_tasks() if task is not current and not task.done()]
    for task in tasks:
        task.cancel()
    if not tasks:
        return []
    _, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in tasks:
        if task.done() and not task.cancelled() and task.exception() is not None:
            log.debug("task %s ended with %r", task.get_name(), task.exception())
    left = sorted(task.get_name() for task in pending)
    if left:
        log.warning("%d task(s) still running %.2f s after cancel; abandoned: %s", len(left), timeout_s, left)
    return left


def run_bounded(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run``, except that the tasks still running at the end get ``LEFTOVER_S``, not for ever.

    ``asyncio.run`` cancels what is left and waits for all of it without a limit. A task inside a call
    to a database that stopped answering can outlive its cancellation for the socket timeout (10 s): a
    cancelled change-stream read first sends killCursors, and a cancellation can be lost in the driver
    altogether. The stop already gave up on such tasks; so does this.
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(settle_tasks(LEFTOVER_S))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
