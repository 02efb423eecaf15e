"""Group commit: callers queue their work, one task writes what arrived meanwhile as one batch (DESIGN §6a).

The draining task takes everything queued (up to ``max_batch``) when the previous batch's write returns,
so at low load a batch is one item and waits for nothing, and under load a batch is what arrived while the
database was busy with the previous one. The queue is bounded: a caller that finds it full is refused at
once (``EventQueueFull``) instead of waiting behind an ever longer line.

One wait, bounded and only under load (``gather_s``, ADR 017): callers that send their next event as soon
as they hear about the last one (a reactor's loop, an executor's callbacks) are still on their way back
when the batch that answered them ends, so taking the queue at once writes half of them, and the two
halves then alternate for good (batches of 4 from 8 such callers, measured). So the next batch waits,
at most ``gather_s`` and at most as long as the last write took, until as many items are queued as were
waiting for the last batch's end (its own callers and those queued behind it). At low load that count is
reached by the first arrival, so nothing waits.

The batch function answers every item itself (``Pending.answer`` / ``Pending.fail``), now or later (it
may hand an item to other work); if it raises, every item it left unanswered is failed with that error.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pipelinejobs_server.domain.errors import EventQueueFull

Item = TypeVar("Item")
Result = TypeVar("Result")


@dataclass
class Pending(Generic[Item, Result]):
    """One caller's work in a batch and the future it waits on."""

    item: Item
    future: asyncio.Future[Result] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    @property
    def answered(self) -> bool:
        return self.future.done()

    def answer(self, result: Result) -> None:
        if not self.future.done():  # the caller may have given up (deadline, cancel)
            self.future.set_result(result)

    def fail(self, error: BaseException) -> None:
        if not self.future.done():
            self.future.set_exception(error)


@dataclass
class BatchStats:
    """Batch sizes seen, for the metrics and the benchmark."""

    batches: int = 0
    items: int = 0
    largest: int = 0
    sizes: dict[int, int] = field(default_factory=dict)
    # Items the batch function could not settle itself and handed to other work (the one-event path).
    handed_over: int = 0

    def observe(self, size: int) -> None:
        self.batches += 1
        self.items += size
        self.largest = max(self.largest, size)
        self.sizes[size] = self.sizes.get(size, 0) + 1


class GroupCommit(Generic[Item, Result]):
    """Batches of what arrived while the previous batch was being written.

    Up to ``in_flight`` batches are written at once, never two with the same key: an item whose key is
    in a batch being written waits for the next one (and so do the later items of its key), so a key's
    items are written one batch after the other, in arrival order. With one in flight, a batch is all
    that queued meanwhile; with more, the database overlaps the journal commits of the batches.
    """

    def __init__(
        self,
        write: Callable[[Sequence[Pending[Item, Result]]], Awaitable[None]],
        *,
        max_batch: int,
        max_queued: int,
        in_flight: int = 1,
        gather_s: float = 0.0,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._in_flight = max(in_flight, 1)
        self._gather_s = max(gather_s, 0.0)
        # What the next batch waits for (``_gather``): how many items, for how long at most.
        self._expected = 0
        self._expected_for_s = 0.0
        self._arrived = asyncio.Event()
        self._queue: deque[tuple[str, Pending[Item, Result]]] = deque()
        self._busy: set[str] = set()  # the keys of the batches being written
        self._writers = 0
        self._tasks: set[asyncio.Task[None]] = set()
        self.stats = BatchStats()
        # Told each batch's size as it starts (the metrics, wired by the composition root).
        self.listeners: list[Callable[[int], None]] = []

    async def submit(self, item: Item, key: str = "") -> Result:
        if len(self._queue) >= self._max_queued:
            raise EventQueueFull(
                f"this server has {len(self._queue)} events waiting to be written; retry shortly",
                limit=self._max_queued,
            )
        pending: Pending[Item, Result] = Pending(item)
        self._queue.append((key, pending))
        self._arrived.set()
        self._start()
        return await asyncio.shield(pending.future)

    def _start(self) -> None:
        """Start a writer while there is room in flight and an item whose key is free (no await here).

        The writer takes its batch when it first runs, not now: what the callers of this same moment
        queue behind this one joins it."""
        while self._writers < self._in_flight and any(key not in self._busy for key, _ in self._queue):
            self._writers += 1
            task = asyncio.get_running_loop().create_task(self._writer())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> tuple[list[Pending[Item, Result]], set[str]]:
        """The next batch: queued items in order, up to ``max_batch``, of keys not being written."""
        batch: list[Pending[Item, Result]] = []
        keys: set[str] = set()
        waiting: deque[tuple[str, Pending[Item, Result]]] = deque()
        held: set[str] = set()  # a key with an item left waiting: its later items wait too
        for key, pending in self._queue:
            if len(batch) < self._max_batch and key not in self._busy and key not in held:
                batch.append(pending)
                keys.add(key)
            else:
                waiting.append((key, pending))
                held.add(key)
        self._queue = waiting
        self._busy |= keys
        return batch, keys

    async def _writer(self) -> None:
        try:
            while True:
                await self._gather()
                batch, keys = self._take()
                if not batch:
                    return
                started = asyncio.get_running_loop().time()
                try:
                    await self._run(batch)
                finally:
                    self._busy -= keys
                if self._gather_s:
                    self._expected = min(len(batch) + len(self._queue), self._max_batch)
                    took = asyncio.get_running_loop().time() - started
                    self._expected_for_s = min(self._gather_s, took)
                self._start()  # items of these keys may go to another writer now
        finally:
            self._writers -= 1

    async def _gather(self) -> None:
        """Wait until the callers the last batch answered are back, or its bounded time is up.

        Used once: a writer that finds the queue empty afterwards ends, and the next arrival starts
        one that waits for nothing."""
        expected, self._expected = self._expected, 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._expected_for_s
        while len(self._queue) < expected:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                async with asyncio.timeout(remaining):  # not wait_for: api/health.py says why
                    await self._arrived.wait()
            except TimeoutError:
                return

    async def _run(self, batch: list[Pending[Item, Result]]) -> None:
        self.stats.observe(len(batch))
        for listener in self.listeners:
            listener(len(batch))
        try:
            await self._write(batch)
        except asyncio.CancelledError:
            for pending in batch:
                pending.fail(asyncio.CancelledError())
            raise
        except Exception as error:  # handed to the callers, who turn it into a status
            for pending in batch:
                pending.fail(error)
