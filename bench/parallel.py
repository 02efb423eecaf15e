"""Running the same work on several threads at once, and stopping them all on Ctrl-C or a failure."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# Set on Ctrl-C or when any worker fails; loops in workers check it between calls.
STOP = threading.Event()


class Stopped(Exception):
    """A worker noticed STOP and gave up early."""


def check_stop() -> None:
    if STOP.is_set():
        raise Stopped


def run_parallel(work: Callable[[int], T], threads: int) -> tuple[list[T], float]:
    """``work(i)`` for i in range(threads), all released at once; the results and the wall time.

    The wall time runs from the release to the end of the slowest worker. The first failure is re-raised.
    """
    results: dict[int, T] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads + 1)

    def target(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work(index)
        except BaseException as error:
            errors.append(error)
            STOP.set()

    # Daemon threads: on Ctrl-C the main thread cleans up at once; the workers see STOP or a dead server.
    workers = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(threads)]
    for worker in workers:
        worker.start()
    try:
        barrier.wait()
        started = time.perf_counter()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
    except BaseException:
        STOP.set()
        barrier.abort()
        raise
    if errors:
        raise errors[0]
    return [results[i] for i in range(threads)], elapsed


def map_parallel(work: Callable[[int, int], T], count: int, threads: int) -> list[T]:
    """``work(worker, i)`` for i in range(count), spread over ``threads`` workers; results in index order."""
    share = [list(range(start, count, threads)) for start in range(threads)]

    def chunk(worker: int) -> list[tuple[int, T]]:
        done: list[tuple[int, T]] = []
        for index in share[worker]:
            check_stop()
            done.append((index, work(worker, index)))
        return done

    chunks, _ = run_parallel(chunk, threads)
    return [result for _, result in sorted((pair for part in chunks for pair in part), key=lambda p: p[0])]
