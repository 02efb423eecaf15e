"""The pause of a flag-ended loop (stopping.py): it lasts its time, or ends when the flag is set."""

from __future__ import annotations

import asyncio

from pipelinejobs_server.stopping import pause


def test_a_pause_lasts_its_time_when_nothing_stops_it() -> None:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        started = loop.time()
        await pause(asyncio.Event(), 0.05)
        return loop.time() - started

    assert asyncio.run(run()) >= 0.05


def test_a_pause_ends_as_soon_as_the_flag_is_set() -> None:
    async def run() -> float:
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        loop.call_later(0.02, stopping.set)
        started = loop.time()
        await pause(stopping, 30.0)
        return loop.time() - started

    assert asyncio.run(run()) < 10.0
