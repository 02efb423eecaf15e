"""Proof that section 2 would see the O(N) trap: the trap itself, measured the same way, straight in pymongo.

Two scratch collections of ``calibration_small`` and ``calibration_large`` documents; a compare-and-set by
``_id`` alternates between them, once as ``find_one_and_update`` (scans on the embedded database, DESIGN
section 9) and once as ``update_one`` (indexed). The first ratio shows how plainly an O(N) write path would
stand out in the collection rows, whose sizes are larger still (the sizes here are kept small because
each scanning call costs ~27 ms per 3,000 documents).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from pymongo import MongoClient, ReturnDocument
from pymongo.collection import Collection

from .floor import DURABLE, Document
from .paired import paired
from .plan import Plan
from .stats import Row, median, paired_row

SECTION = "collection"


def _collection(client: MongoClient[Document], size: int) -> Collection[Document]:
    db = client.get_database("bench_calibration", write_concern=DURABLE)
    collection: Collection[Document] = db[f"jobs_{size}"]
    collection.insert_many(
        [{"_id": f"job-{i:06d}", "seq": 0, "state": "RUNNING", "data": {"i": i}} for i in range(size)]
    )
    return collection


def _timer(collection: Collection[Document], size: int, operation: str) -> Callable[[int], float]:
    # In the middle: neither the first nor the last document a scan meets; one target per operation.
    target = f"job-{size // 2 + (operation == 'update_one'):06d}"
    seq = [0]

    def cas(_: int) -> float:
        query: dict[str, Any] = {"_id": target, "seq": seq[0]}
        change = {"$set": {"seq": seq[0] + 1}}
        started = time.perf_counter()
        if operation == "find_one_and_update":
            applied = collection.find_one_and_update(query, change, return_document=ReturnDocument.AFTER)
            ok = applied is not None
        else:
            ok = collection.update_one(query, change).modified_count == 1
        seconds = time.perf_counter() - started
        if not ok:
            raise RuntimeError(f"{operation} on {target} at seq {seq[0]} did not apply")
        seq[0] += 1
        return seconds

    return cas


def measure(uri: str, plan: Plan) -> list[Row]:
    client: MongoClient[Document] = MongoClient(uri)
    try:
        small = _collection(client, plan.calibration_small)
        large = _collection(client, plan.calibration_large)
        rows = []
        for operation in ("find_one_and_update", "update_one"):
            runs: tuple[list[float], list[float]] = ([], [])
            baseline = _timer(small, plan.calibration_small, operation)
            measured = _timer(large, plan.calibration_large, operation)
            for _ in range(3):
                base, other = paired(baseline, measured, plan.calibration_calls)
                runs[0].append(median(base) * 1000)
                runs[1].append(median(other) * 1000)
            rows.append(
                paired_row(
                    SECTION,
                    f"calibration: {operation} by _id",
                    "ms",
                    (
                        (f"{plan.calibration_small} docs", runs[0]),
                        (f"{plan.calibration_large} docs", runs[1]),
                    ),
                )
            )
        return rows
    finally:
        client.close()
