"""Group commit's queue (service/batching.py): a batch is what arrived while the previous one was being
written, never more than ``max_batch``; a full queue refuses at once; one batch's failure stays in it."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from pipelinejobs_server.domain.errors import EventQueueFull
from pipelinejobs_server.service.batching import GroupCommit, Pending


class Recorder:
    """A batch function that answers each item with its own value after a write that takes ``delay_s``."""

    def __init__(self, delay_s: float = 0.0, failing: frozenset[int] = frozenset()) -> None:
        self.batches: list[list[int]] = []
        self.delay_s = delay_s
        self.failing = failing

    async def write(self, batch: Sequence[Pending[int, int]]) -> None:
        self.batches.append([pending.item for pending in batch])
        await asyncio.sleep(self.delay_s)
        if any(pending.item in self.failing for pending in batch):
            raise RuntimeError("the write failed")
        for pending in batch:
            pending.answer(pending.item * 10)


def test_alone_an_item_is_a_batch_of_one_and_waits_for_nothing() -> None:
    async def run() -> list[int]:
        recorder = Recorder()
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=8, max_queued=8)
        answers = [await group.submit(n) for n in range(3)]
        assert recorder.batches == [[0], [1], [2]]
        assert group.stats.sizes == {1: 3}
        return answers

    assert asyncio.run(run()) == [0, 10, 20]


def test_a_batch_is_what_arrived_while_the_previous_one_was_written() -> None:
    async def run() -> None:
        recorder = Recorder(delay_s=0.05)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=4, max_queued=100)
        first = asyncio.ensure_future(group.submit(0))
        await asyncio.sleep(0.01)  # the first batch, [0], is being written
        rest = [asyncio.ensure_future(group.submit(n)) for n in range(1, 11)]
        assert await asyncio.gather(first, *rest) == [n * 10 for n in range(11)]
        # Arrival order kept, and no batch past max_batch.
        assert recorder.batches == [[0], [1, 2, 3, 4], [5, 6, 7, 8], [9, 10]]
        assert group.stats.largest == 4
        assert group.stats.items == 11

    asyncio.run(run())


def test_a_full_queue_refuses_at_once_and_says_its_limit() -> None:
    async def run() -> None:
        recorder = Recorder(delay_s=0.05)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=2, max_queued=3)
        calls = [asyncio.ensure_future(group.submit(n)) for n in range(5)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert results[:3] == [0, 10, 20]
        for refused in results[3:]:
            assert isinstance(refused, EventQueueFull)
            assert refused.metadata == {"limit": "3"}
        assert [n for batch in recorder.batches for n in batch] == [0, 1, 2]
        # Room again once the queue drained.
        assert await group.submit(7) == 70

    asyncio.run(run())


def test_a_failed_write_fails_its_own_batch_only() -> None:
    async def run() -> None:
        recorder = Recorder(delay_s=0.02, failing=frozenset({2}))
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=2, max_queued=100)
        calls = [asyncio.ensure_future(group.submit(n)) for n in range(6)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        assert recorder.batches == [[0, 1], [2, 3], [4, 5]]
        assert results[0:2] == [0, 10]
        assert results[4:6] == [40, 50]
        assert all(isinstance(result, RuntimeError) for result in results[2:4])

    asyncio.run(run())


def test_a_caller_that_gives_up_does_not_stop_the_batch() -> None:
    async def run() -> None:
        recorder = Recorder(delay_s=0.05)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=8, max_queued=8)
        impatient = asyncio.ensure_future(group.submit(1))
        patient = asyncio.ensure_future(group.submit(2))
        await asyncio.sleep(0.01)
        impatient.cancel()
        assert await patient == 20
        with pytest.raises(asyncio.CancelledError):
            await impatient
        assert recorder.batches == [[1, 2]]

    asyncio.run(run())


def test_a_keys_items_are_written_in_order_and_other_keys_beside_them() -> None:
    async def run() -> None:
        in_flight: list[set[str]] = []  # the keys of each batch being written
        most = 0
        order: list[int] = []
        shared: list[str] = []

        async def write(batch: Sequence[Pending[int, int]]) -> None:
            nonlocal most
            keys = {"job-a" if pending.item < 100 else f"job-{pending.item - 100}" for pending in batch}
            shared.extend(key for other in in_flight for key in keys & other)
            in_flight.append(keys)
            most = max(most, len(in_flight))
            await asyncio.sleep(0.02)
            in_flight.remove(keys)
            for pending in batch:
                order.append(pending.item)
                pending.answer(pending.item)

        group: GroupCommit[int, int] = GroupCommit(write, max_batch=2, max_queued=100, in_flight=4)
        same = [asyncio.ensure_future(group.submit(n, key="job-a")) for n in range(6)]
        others = [asyncio.ensure_future(group.submit(100 + n, key=f"job-{n}")) for n in range(8)]
        await asyncio.gather(*same, *others)
        assert [n for n in order if n < 100] == list(range(6)), "one key's items in arrival order"
        assert not shared, f"two batches with the same key were written at once: {shared}"
        assert most > 1, "batches of other keys were in flight at the same time"

    asyncio.run(run())


async def _closed_loop(group: GroupCommit[int, int], callers: int, rounds: int) -> None:
    """Callers that each send again as soon as they hear back, after a turnaround of their own
    (staggered, as a client's answer and next request take their time over the network)."""

    async def caller(number: int) -> None:
        for round_number in range(rounds):
            assert await group.submit(number * 100 + round_number) == (number * 100 + round_number) * 10
            await asyncio.sleep(0.001 * (1 + number))

    await asyncio.gather(*(caller(number) for number in range(callers)))


def test_under_load_a_batch_waits_for_the_callers_the_last_one_answered() -> None:
    async def run() -> None:
        recorder = Recorder(delay_s=0.03)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=64, max_queued=100, gather_s=0.1)
        await _closed_loop(group, callers=8, rounds=6)
        # Without the wait the first answered caller starts a batch alone and the rest queue behind
        # it: the two halves then alternate (sizes 1 and 7, or 4 and 4) for good.
        assert [len(batch) for batch in recorder.batches] == [8] * 6

    asyncio.run(run())


def test_without_a_gather_time_the_queue_is_taken_at_once() -> None:
    async def run() -> None:
        recorder = Recorder(delay_s=0.03)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=64, max_queued=100)
        await _closed_loop(group, callers=8, rounds=6)
        assert len(recorder.batches) > 6  # the halves alternate: what the wait above is for

    asyncio.run(run())


def test_at_low_load_nothing_waits_for_company() -> None:
    async def run() -> list[float]:
        recorder = Recorder(delay_s=0.01)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=64, max_queued=100, gather_s=0.5)
        loop = asyncio.get_running_loop()
        latencies = []
        for n in range(4):  # one event now and then, as a single executor sends them
            started = loop.time()
            await group.submit(n)
            latencies.append(loop.time() - started)
            await asyncio.sleep(0.05)
        assert recorder.batches == [[0], [1], [2], [3]]
        return latencies

    # The write takes 10 ms; a batch that waited for more items (gather_s) would take 500 ms.
    assert max(asyncio.run(run())) < 0.25


def test_callers_that_do_not_come_back_cost_at_most_the_last_writes_time() -> None:
    async def run() -> float:
        recorder = Recorder(delay_s=0.03)
        group: GroupCommit[int, int] = GroupCommit(recorder.write, max_batch=64, max_queued=100, gather_s=2.0)
        await asyncio.gather(*(group.submit(n) for n in range(4)))  # a batch of 4: 4 are expected back
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert await group.submit(9) == 90  # only one comes back
        assert recorder.batches == [[0, 1, 2, 3], [9]]
        return loop.time() - started

    # At most the last write's 30 ms of waiting, then its own 30 ms write; never the 2 s of gather_s.
    assert asyncio.run(run()) < 1.0
