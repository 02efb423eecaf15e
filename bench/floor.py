"""The database floor: the writes one event needs, straight through pymongo, no service at all.

One event is an ``insert_one`` into an events collection under a unique ``(job_uuid, seq)`` index, then an
``update_one`` compare-and-set on the job record filtered by ``{_id, seq}`` - the log-first pattern of
DESIGN section 6.3 - both with the journaled majority write concern the service uses. That pair on a
database of its own with only the log's unique index is ``bare``: the database's own limit for an event.

A ladder of floors then adds, one step at a time, the rest of the database work the service does for an
event, each on a database of its own, so the gap between the bare floor and the service can be split by
cause (bench/throughput.py measures them in the same rounds):

- ``read``: the ``find_one`` of the job record any write path needs before deciding;
- ``indexes``: the service's collections and indexes (created by the server's own
  ``Database.ensure_indexes``), job records shaped by ``job_to_document``, entries by ``event_to_document``;
- ``schema``: also an idempotency key on each entry (its partial unique index) and the compare-and-set as
  ``JobStore.advance`` writes it, with the ``cancelled`` guard and the token's new expiry - exactly the
  service's database work, without the service.

Since ADR 013 the service's listing indexes are on ``job_listing``, which an event rewrites only on a
change of state or once a second per job, so ``indexes`` differs from ``read`` by the log's idempotency
index only; the floors do not write listings (the service does, now and then: that is on its side).

Each floor runs one by one (every thread its own read, insert and compare-and-set) or, as
``BatchedFloor``, as group commit does it: one writer reading the batch's records in one query,
inserting its entries in one ``insert_many`` and advancing the records in one ``bulk_write``. With
``shared`` every thread works on the same one job (a hot job): one by one, the threads race for its
seqs and the loser reads again; batched, the batch's events of that job chain in memory.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import ASCENDING, MongoClient, UpdateOne, WriteConcern
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from pipelinejobs_server.domain.history import Entry, utc_now_ms
from pipelinejobs_server.domain.records import JobRecord
from pipelinejobs_server.domain.tokens import StoredToken
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.documents import event_to_document, job_to_document

from .parallel import check_stop, run_parallel

DURABLE = WriteConcern(w="majority", j=True)
Document = dict[str, Any]
TOKEN_DIGEST = "b" * 64
STEPS = ("bare", "read", "indexes", "schema")


@dataclass
class FloorJob:
    uuid: str
    seq: int = 1
    head: str = ""


def _record(identity: str, now: datetime) -> JobRecord:
    return JobRecord(
        uuid=identity,
        pipeline_uuid=str(uuid.uuid4()),
        state="RUNNING",
        seq=1,
        links={"lab": ["floor-lab"], "experiment": ["floor-experiment"], "sample": [identity]},
        data={"bench": "floor"},
        archive_path=f"/products/v1/floor/{identity}",
        session="floor",
        agent="",
        task="",
        last_event="run",
        head_hash="",
        created_at=now,
        updated_at=now,
        tokens=(StoredToken(TOKEN_DIGEST, now + timedelta(hours=72)),),
        ever_running=True,
    )


async def _service_indexes(uri: str, database: str) -> None:
    store = Database(uri, database, timeout_ms=60_000)
    try:
        await store.ensure_indexes()
    finally:
        await store.close()


class Floor:
    def __init__(
        self, uri: str, threads: int, jobs_per_thread: int, step: str, *, shared: bool = False, tag: str = ""
    ) -> None:
        self.step = STEPS.index(step)
        self.shared = shared
        self.client: MongoClient[Document] = MongoClient(uri, tz_aware=True)
        name = f"bench_floor_{step}{tag}"
        db = self.client.get_database(name, write_concern=DURABLE)
        self.database = db
        service_shaped = self.step >= STEPS.index("indexes")
        self.events: Collection[Document] = db["job_events" if service_shaped else "events"]
        self.jobs: Collection[Document] = db["jobs"]
        if service_shaped:
            asyncio.run(_service_indexes(uri, name))
        else:
            self.events.create_index(
                [("job_uuid", ASCENDING), ("seq", ASCENDING)], unique=True, name="job_seq"
            )
        self.threads = threads
        now = utc_now_ms()
        if shared:  # every thread on the same job(s)
            common = [FloorJob(str(uuid.uuid4())) for _ in range(jobs_per_thread)]
            self.work = [common for _ in range(threads)]
        else:
            self.work = [
                [FloorJob(str(uuid.uuid4())) for _ in range(jobs_per_thread)] for _ in range(threads)
            ]
        for job in {job.uuid: job for share in self.work for job in share}.values():
            if service_shaped:
                self.jobs.insert_one(job_to_document(_record(job.uuid, now)))
            else:
                self.jobs.insert_one({"_id": job.uuid, "seq": 1, "state": "RUNNING", "head_hash": ""})

    def one_event(self, job: FloorJob) -> float:
        """One event on ``job``; its duration in seconds (with the retries a lost seq race costs)."""
        started = time.perf_counter()
        while not self._try_event(job):
            check_stop()
        return time.perf_counter() - started

    def _try_event(self, job: FloorJob) -> bool:
        seq, head = job.seq, job.head
        if self.step >= STEPS.index("read"):
            record = self.jobs.find_one({"_id": job.uuid})
            if record is None:
                raise RuntimeError(f"floor job {job.uuid} is missing")
            seq, head = int(record["seq"]), str(record["head_hash"])
        schema = self.step >= STEPS.index("schema")
        now = datetime.now(UTC).replace(microsecond=0)
        digest = uuid.uuid4().hex * 2  # a hash-sized string, like the service's
        entry = Entry(
            job_uuid=job.uuid,
            seq=seq + 1,
            uuid=str(uuid.uuid4()),
            name="update",
            from_state="RUNNING",
            to_state="RUNNING",
            timestamp=now,
            data={"progress": seq, "note": "bench update"},
            source="grpc",
            idempotency_key=uuid.uuid4().hex if schema else "",
            prev_hash=head,
        )
        try:
            self.events.insert_one(event_to_document(entry, digest))
        except DuplicateKeyError:
            if not self.shared:
                raise
            return False  # another thread took this seq: read again
        query, update = compare_and_set(job.uuid, seq, digest, now, schema=schema)
        if self.jobs.update_one(query, update).modified_count != 1:
            raise RuntimeError(f"compare-and-set on {job.uuid} at seq {seq} did not apply")
        job.seq, job.head = seq + 1, digest
        return True

    def round(self, per_thread: int) -> tuple[float, list[float]]:
        """``per_thread`` events on every thread at once, each thread cycling over its jobs."""

        def work(thread: int) -> list[float]:
            latencies = []
            share = self.work[thread]
            for i in range(per_thread):
                check_stop()
                latencies.append(self.one_event(share[i % len(share)]))
            return latencies

        results, elapsed = run_parallel(work, self.threads)
        return elapsed, [latency for part in results for latency in part]

    def close(self) -> None:
        self.client.close()


def compare_and_set(
    job: str, seq: int, digest: str, now: datetime, *, schema: bool, to_seq: int = 0
) -> tuple[dict[str, Any], dict[str, Any]]:
    query: dict[str, Any] = {"_id": job, "seq": seq}
    changes: dict[str, Any] = {
        "seq": to_seq or seq + 1,
        "last_event": "update",
        "head_hash": digest,
        "updated_at": now,
    }
    if schema:  # as JobStore.advance writes it, extending the token
        query.update({"cancelled": {"$ne": True}, "tokens.h": TOKEN_DIGEST})
        changes.update({"state": "RUNNING", "tokens.$.exp": now + timedelta(hours=72)})
    return query, {"$set": changes}


class BatchedFloor(Floor):
    """The service's database work (``schema``) as group commit does it, from one writer: each batch is
    the next event of every thread (``threads`` events), read in one ``find``, inserted in one ordered
    ``insert_many`` and advanced in one unordered ``bulk_write``. The database's own limit for batches
    of this size."""

    def __init__(
        self, uri: str, threads: int, jobs_per_thread: int, *, shared: bool = False, tag: str = "_batched"
    ) -> None:
        super().__init__(uri, threads, jobs_per_thread, "schema", shared=shared, tag=tag)

    def round(self, per_thread: int) -> tuple[float, list[float]]:
        latencies: list[float] = []
        started = time.perf_counter()
        for i in range(per_thread):
            check_stop()
            batch = [share[i % len(share)] for share in self.work]
            began = time.perf_counter()
            self._batch(batch)
            latencies += [time.perf_counter() - began] * len(batch)
        return time.perf_counter() - started, latencies

    def _batch(self, batch: list[FloorJob]) -> list[Document]:
        """One batch; the history documents it inserted."""
        unique = {job.uuid: job for job in batch}
        records = {doc["_id"]: doc for doc in self.jobs.find({"_id": {"$in": list(unique)}})}
        now = datetime.now(UTC).replace(microsecond=0)
        heads = {uuid_: (int(doc["seq"]), str(doc["head_hash"])) for uuid_, doc in records.items()}
        first = dict(heads)
        documents = []
        for job in batch:
            seq, head = heads[job.uuid]
            digest = uuid.uuid4().hex * 2
            entry = Entry(
                job_uuid=job.uuid,
                seq=seq + 1,
                uuid=str(uuid.uuid4()),
                name="update",
                from_state="RUNNING",
                to_state="RUNNING",
                timestamp=now,
                data={"progress": seq, "note": "bench update"},
                source="grpc",
                idempotency_key=uuid.uuid4().hex,
                prev_hash=head,
            )
            documents.append(self._document(entry, digest))
            heads[job.uuid] = (seq + 1, digest)
        self.events.insert_many(documents, ordered=True)
        updates = [
            UpdateOne(
                *compare_and_set(job, first[job][0], heads[job][1], now, schema=True, to_seq=heads[job][0])
            )
            for job in unique
        ]
        if self.jobs.bulk_write(updates, ordered=False).modified_count != len(updates):
            raise RuntimeError("a batched compare-and-set did not apply")
        return documents

    def _document(self, entry: Entry, digest: str) -> Document:
        """The history document of ``entry``, as the service writes it on a database with change
        streams (the embedded one): without the feed's mark."""
        return event_to_document(entry, digest)
