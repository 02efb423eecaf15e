"""Group commit: callers queue their work, one task writes what arrived meanwhile as one batch (DESIGN §6a).

No timer: the draining task takes everything queued (up to ``max_batch``) the moment the previous batch's
write returns, so at low load a batch is one item and waits for nothing, and under load a batch is what
arrived while the database was busy with the previous one. The queue is bounded: a caller that finds it
full is refused at once (``EventQueueFull``) instead of waiting behind an ever longer line.

The batch function answers every item itself (``Pending.answer`` / ``Pending.fail``), now or later (it
may hand an item to other work); if it raises, every item it left unanswered is failed with that error.
"""

from __future__ import annotations

import asyncio
import zlib
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


class _Lane(Generic[Item, Result]):
    """One queue and the task that drains it: one batch in flight at a time."""

    def __init__(self) -> None:
        self.queue: deque[Pending[Item, Result]] = deque()
        self.drainer: asyncio.Task[None] | None = None


class GroupCommit(Generic[Item, Result]):
    """Batches of what arrived while the lane's previous batch was being written.

    Items with the same key always take the same lane, so their batches are written one after the other
    and a key's items stay in arrival order; ``lanes`` > 1 lets batches of different keys be in flight
    at once (the database overlaps their journal commits).
    """

    def __init__(
        self,
        write: Callable[[Sequence[Pending[Item, Result]]], Awaitable[None]],
        *,
        max_batch: int,
        max_queued: int,
        lanes: int = 1,
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._max_queued = max_queued
        self._lanes: list[_Lane[Item, Result]] = [_Lane() for _ in range(max(lanes, 1))]
        self._queued = 0
        self.stats = BatchStats()
        # Told each batch's size as it starts (the metrics, wired by the composition root).
        self.listeners: list[Callable[[int], None]] = []

    async def submit(self, item: Item, key: str = "") -> Result:
        if self._queued >= self._max_queued:
            raise EventQueueFull(
                f"this server has {self._queued} events waiting to be written; retry shortly",
                limit=self._max_queued,
            )
        lane = self._lanes[zlib.crc32(key.encode()) % len(self._lanes)]
        pending: Pending[Item, Result] = Pending(item)
        lane.queue.append(pending)
        self._queued += 1
        if lane.drainer is None or lane.drainer.done():
            # Between the check and the start there is no await: one drainer per lane at a time.
            lane.drainer = asyncio.get_running_loop().create_task(self._drain(lane))
        return await asyncio.shield(pending.future)

    async def _drain(self, lane: _Lane[Item, Result]) -> None:
        while lane.queue:
            batch = [lane.queue.popleft() for _ in range(min(self._max_batch, len(lane.queue)))]
            self._queued -= len(batch)
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
