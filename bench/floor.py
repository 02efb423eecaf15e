"""The database floor: the fewest writes one event needs, straight through pymongo, no service at all.

One event is an ``insert_one`` into an events collection under a unique ``(job_uuid, seq)`` index, then an
``update_one`` compare-and-set on the job record filtered by ``{_id, seq}`` - the log-first pattern of
DESIGN section 6.3 - both with the journaled majority write concern the service uses. ``with_read`` adds
the ``find_one`` of the job record that any real write path needs before deciding (informative only).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, MongoClient, WriteConcern
from pymongo.collection import Collection

from .parallel import check_stop, run_parallel

DURABLE = WriteConcern(w="majority", j=True)
Document = dict[str, Any]


class Floor:
    def __init__(self, uri: str, threads: int, database: str = "bench_floor") -> None:
        self.client: MongoClient[Document] = MongoClient(uri, tz_aware=True)
        db = self.client.get_database(database, write_concern=DURABLE)
        self.events: Collection[Document] = db["events"]
        self.jobs: Collection[Document] = db["jobs"]
        self.events.create_index([("job_uuid", ASCENDING), ("seq", ASCENDING)], unique=True, name="job_seq")
        self.threads = threads
        self.seqs = [0] * threads
        for thread in range(threads):
            self.jobs.insert_one({"_id": self._job(thread), "seq": 0, "state": "RUNNING", "head_hash": ""})

    @staticmethod
    def _job(thread: int) -> str:
        return f"floor-job-{thread}"

    def one_event(self, thread: int, *, with_read: bool) -> float:
        """One event on this thread's job; its duration in seconds."""
        job, seq = self._job(thread), self.seqs[thread]
        started = time.perf_counter()
        if with_read and self.jobs.find_one({"_id": job}) is None:
            raise RuntimeError(f"floor job {job} is missing")
        now = datetime.now(UTC)
        digest = uuid.uuid4().hex * 2  # a hash-sized string, like the service's
        self.events.insert_one(
            {
                "_id": str(uuid.uuid4()),
                "job_uuid": job,
                "seq": seq + 1,
                "name": "update",
                "from_state": "RUNNING",
                "to_state": "RUNNING",
                "timestamp": now,
                "data": {"progress": seq, "note": "bench update"},
                "source": "grpc",
                "prev_hash": "",
                "hash": digest,
            }
        )
        result = self.jobs.update_one(
            {"_id": job, "seq": seq},
            {"$set": {"seq": seq + 1, "last_event": "update", "head_hash": digest, "updated_at": now}},
        )
        if result.modified_count != 1:
            raise RuntimeError(f"compare-and-set on {job} at seq {seq} did not apply")
        self.seqs[thread] = seq + 1
        return time.perf_counter() - started

    def round(self, per_thread: int, *, with_read: bool) -> tuple[float, list[float]]:
        """``per_thread`` events on every thread at once: the wall time and every event's latency."""

        def work(thread: int) -> list[float]:
            latencies = []
            for _ in range(per_thread):
                check_stop()
                latencies.append(self.one_event(thread, with_read=with_read))
            return latencies

        results, elapsed = run_parallel(work, self.threads)
        return elapsed, [latency for part in results for latency in part]

    def close(self) -> None:
        self.client.close()
