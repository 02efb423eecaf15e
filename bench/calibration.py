"""Proof that section 2 would see the O(N) trap: the trap itself, measured the same way, straight in pymongo.

Two scratch collections with as many documents as section 2's databases have jobs; a compare-and-set by
``_id`` alternates between them, once as ``find_one_and_update`` (scans on the embedded database, DESIGN
section 9) and once as ``update_one`` (indexed). If the first ratio is not far above the target, the sizes
are too small for section 2 to mean anything.
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
from .stats import Comparison, Summary

SECTION = "2 collection"


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


def measure(uri: str, plan: Plan) -> list[Comparison]:
    client: MongoClient[Document] = MongoClient(uri)
    try:
        small = _collection(client, plan.small_jobs)
        large = _collection(client, plan.large_jobs)
        comparisons = []
        for operation in ("find_one_and_update", "update_one"):
            base, other = paired(
                _timer(small, plan.small_jobs, operation),
                _timer(large, plan.large_jobs, operation),
                plan.collection_window,
            )
            comparisons.append(
                Comparison(
                    SECTION,
                    f"calibration: {operation} by _id",
                    "ms",
                    f"{plan.small_jobs} docs",
                    Summary.of(base).scaled(1000.0),
                    f"{plan.large_jobs} docs",
                    Summary.of(other).scaled(1000.0),
                )
            )
        return comparisons
    finally:
        client.close()
