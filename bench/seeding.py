"""Large databases, written straight into the database: jobs with their histories, and long histories.

Creating 100,000 jobs through the API would take longer than the whole benchmark may, so the documents
are built here with the server's own code (``job_to_document``, ``event_to_document``, ``Entry.digest``,
the identity functions and the state machine) and inserted in batches. Every seeded job is what the
service would have stored: a valid hash chain from ``create``, and a record that agrees with its last entry.
Jobs are seeded into an empty database, with their listings (storage/listed.py), and the server is started
afterwards, so the indexes are built by the server itself (``ensure_indexes``) over the finished collections.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pymongo import MongoClient, WriteConcern

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.history import Entry, utc_now_ms
from pipelinejobs_server.domain.identity import job_uuid, normalize_links, pipeline_uuid
from pipelinejobs_server.domain.records import JobRecord, PipelineRecord
from pipelinejobs_server.storage.documents import (
    event_to_document,
    job_from_document,
    job_to_document,
    pipeline_to_document,
)
from pipelinejobs_server.storage.feed import PENDING
from pipelinejobs_server.storage.listed import listing_document

from .harness import Environment, ServerProcess
from .plan import Plan
from .report import progress
from .upkeep import wait_for_upkeep

PIPELINES = 10
LABS = 5
EXPERIMENTS = 50
# A lab with three jobs whatever the size (the oldest, one in the middle, the newest): the sparse filter
# of bench/listing.py.
SPARSE_LAB = "bench-lab-sparse"
BATCH = 2000
# The paths through the machine the seeded jobs took, one in four each: every state filter has matches.
PATHS: tuple[tuple[str, ...], ...] = (
    (fsm.CREATE_EVENT,),
    (fsm.CREATE_EVENT, "run"),
    (fsm.CREATE_EVENT, "run", "finish"),
    (fsm.CREATE_EVENT, "run", "fail"),
)
NEWEST = datetime(2026, 1, 1, tzinfo=UTC)
# Bulk loading needs no journal wait per batch; the server's own writes keep their write concern.
FAST = WriteConcern(w=1)
Document = dict[str, Any]


@dataclass(frozen=True)
class SeededDatabase:
    name: str
    jobs: int
    pipelines: tuple[str, ...]  # pipeline i owns jobs i, i + PIPELINES, ...
    server: ServerProcess


def chain(
    job: str,
    start_seq: int,
    prev_hash: str,
    steps: list[tuple[str, str, str]],
    first: datetime,
    spacing_ms: int = 1,
) -> Iterator[tuple[Entry, str]]:
    """Entries (name, from_state, to_state) continuing a job's chain at ``start_seq``, with their hashes."""
    for offset, (name, source, target) in enumerate(steps):
        entry = Entry(
            job_uuid=job,
            seq=start_seq + offset,
            uuid=str(uuid.uuid4()),
            name=name,
            from_state=source,
            to_state=target,
            timestamp=first + timedelta(milliseconds=offset * spacing_ms),
            data={} if name == fsm.CREATE_EVENT else {"bench": "seeded", "n": start_seq + offset},
            source="grpc",
            idempotency_key="",
            prev_hash=prev_hash,
        )
        prev_hash = entry.digest()
        yield entry, prev_hash


def _steps(path: tuple[str, ...]) -> list[tuple[str, str, str]]:
    steps, state = [], ""
    for name in path:
        target = fsm.INITIAL_STATE if name == fsm.CREATE_EVENT else fsm.decide(state, name).to_state
        steps.append((name, state, target))
        state = target
    return steps


def _pipelines(now: datetime) -> list[PipelineRecord]:
    records = []
    for number in range(PIPELINES):
        components = ((f"bench-component-{number}", "1.0.0"),)
        records.append(
            PipelineRecord(pipeline_uuid(components, {}), f"bench-{number}", "", components, {}, now)
        )
    return records


def _job(number: int, count: int, pipeline: str, created: datetime) -> tuple[Document, list[Document]]:
    sparse = [SPARSE_LAB] if number in (0, count // 2, count - 1) else []
    links = normalize_links(
        {
            "lab": [f"bench-lab-{number % LABS}", *sparse],
            "experiment": [f"bench-experiment-{number % EXPERIMENTS}"],
            "sample": [f"bench-sample-{number}"],
        }
    )
    data = {"bench": "seeded", "n": number}
    identity = job_uuid(pipeline, links, data)
    path = PATHS[number % len(PATHS)]
    entries = list(chain(identity, 1, "", _steps(path), created))
    last, head = entries[-1]
    record = JobRecord(
        uuid=identity,
        pipeline_uuid=pipeline,
        state=last.to_state,
        seq=last.seq,
        links=links,
        data=data,
        archive_path=f"/products/v1/bench/{pipeline}/{identity}",
        session=f"bench-{number}",
        agent="",
        task="",
        last_event=last.name,
        head_hash=head,
        created_at=created,
        updated_at=last.timestamp,
        ever_running=len(path) > 1,
    )
    return job_to_document(record), [_fed(event_to_document(entry, digest)) for entry, digest in entries]


def _fed(document: Document) -> Document:
    """A seeded entry as the relay leaves it (ADR 015): long fed, and past the feed's retention. With the
    mark left on, every server started on a seeded database spent its first minutes feeding the whole
    history (measured: a 3.4 s relay query in the middle of a 100-row ListJobs over 8,000 jobs)."""
    document.pop(PENDING, None)
    return document


def _seed(uri: str, name: str, count: int, histories: bool) -> tuple[str, ...]:
    client: MongoClient[Document] = MongoClient(uri, tz_aware=True)
    try:
        database = client.get_database(name, write_concern=FAST)
        # Whole seconds apart, the newest at a fixed moment, whatever the size: the newest N jobs of
        # every seeded database are alike (same pipelines, states, labs, times; bench/listing.py).
        newest = NEWEST
        pipelines = _pipelines(newest - timedelta(seconds=count + 1))
        database["pipelines"].insert_many([pipeline_to_document(record) for record in pipelines])
        jobs: list[Document] = []
        events: list[Document] = []
        for number in range(count):
            created = newest - timedelta(seconds=count - number)
            job, history = _job(number, count, pipelines[number % PIPELINES].uuid, created)
            jobs.append(job)
            if histories:
                events += history
            if len(jobs) == BATCH or number == count - 1:
                database["jobs"].insert_many(jobs, ordered=False)
                # Listed as the server lists them (storage/listed.py): otherwise its first start lists
                # every job itself, a keyset walk over the records that took most of 20 minutes at
                # 100,000 jobs on a loaded machine.
                listings = [listing_document(job_from_document(job)) for job in jobs]
                database["job_listing"].insert_many(listings, ordered=False)
                if events:
                    database["job_events"].insert_many(events, ordered=False)
                jobs, events = [], []
        return tuple(record.uuid for record in pipelines)
    finally:
        client.close()


_SEEDED: dict[tuple[Path, int], SeededDatabase] = {}


def seeded(env: Environment, count: int, histories: bool = True) -> SeededDatabase:
    """A database of ``count`` seeded jobs with a server on it; made once per run and size. Without
    ``histories`` the jobs have records and listings only (what ListJobs, the counts and start-up read)."""
    key = (env.root, count)
    if key not in _SEEDED:
        name = f"bench_jobs_{count}"
        # The indexes first, as a lab's database has them while it grows: a server on the empty database
        # makes them at once. Built after the seeding instead, over a million jobs, they had taken the
        # embedded database hours, and it answered nothing else meanwhile (docs/performance.md §12.6).
        _upkeep(env, name, "indexes made")
        what = "with their histories" if histories else "without histories"
        progress(f"seeding {count} jobs {what} into {name}")
        started = time.monotonic()
        pipelines = _seed(env.uri, name, count, histories)
        progress(f"seeded {name} in {time.monotonic() - started:.0f} s")
        _uncount(env.uri, name)
        _upkeep(env, name, "jobs counted")
        server = env.start_server(name)
        _SEEDED[key] = SeededDatabase(name, count, pipelines, server)
    return _SEEDED[key]


def _upkeep(env: Environment, name: str, done: str) -> None:
    """Start a server on ``name`` and stop it once its upkeep is done (storage/upkeep.py: it serves
    before its indexes and counts are). Its reads get a longer timeout than the default 10 s socket
    timeout: the first count of a big seeded database reads every record."""
    builder = env.start_server(name, timeout_s=1800.0, settings={"PIPELINEJOBS_DB_TIMEOUT_MS": "360000"})
    progress(f"{name}: {done}, upkeep done in {wait_for_upkeep(builder.address):.1f} s after serving")
    builder.stop()
    env.servers.remove(builder)


def _uncount(uri: str, name: str) -> None:
    """The seeding wrote records behind the counters' back: without counters, the next server counts."""
    client: MongoClient[Document] = MongoClient(uri)
    try:
        client[name].drop_collection("job_counts")
    finally:
        client.close()


def seeded_pair(env: Environment, plan: Plan) -> tuple[SeededDatabase, SeededDatabase]:
    """The plan's small and large seeded databases."""
    histories = plan.seeded_histories
    return seeded(env, plan.small_jobs, histories), seeded(env, plan.large_jobs, histories)


def extend_history(uri: str, database: str, job: str, until_seq: int) -> int:
    """Append ``update`` entries to a RUNNING job's log until its seq is ``until_seq``; advance its record.

    The entries continue the job's hash chain from its record's head, so VerifyHistory accepts them.
    Returns how many were added. The job must be idle (nobody sends it events meanwhile).
    """
    client: MongoClient[Document] = MongoClient(uri, tz_aware=True)
    try:
        db = client.get_database(database, write_concern=FAST)
        record = db["jobs"].find_one({"_id": job})
        if record is None or record["state"] != "RUNNING":
            raise RuntimeError(f"job {job} is not a RUNNING job in {database}")
        seq, head = int(record["seq"]), str(record["head_hash"])
        steps = [("update", "RUNNING", "RUNNING")] * (until_seq - seq)
        # Between the record's last event and now, never in the future: later events are stamped "now".
        first = record["updated_at"].astimezone(UTC)
        spacing_ms = int((utc_now_ms() - first).total_seconds() * 1000) // max(len(steps), 1)
        batch: list[Document] = []
        last: Entry | None = None
        for entry, digest in chain(job, seq + 1, head, steps, first, spacing_ms):
            batch.append(event_to_document(entry, digest))
            last, head = entry, digest
            if len(batch) == BATCH:
                db["job_events"].insert_many(batch)
                batch = []
        if batch:
            db["job_events"].insert_many(batch)
        if last is None:
            return 0
        durable = client.get_database(database, write_concern=WriteConcern(w="majority", j=True))
        changes = {"seq": last.seq, "last_event": last.name, "head_hash": head, "updated_at": last.timestamp}
        # A reader may roll the record forward over the new entries meanwhile (the feed's relay does so
        # for entries older than two seconds), part of the way or all of it: move it from where it is.
        for _ in range(100):
            now = durable["jobs"].find_one({"_id": job}, {"seq": 1, "head_hash": 1}) or {}
            if (now.get("seq"), now.get("head_hash")) == (last.seq, head):
                break
            if not seq <= int(now.get("seq", -1)) < last.seq:
                raise RuntimeError(f"job {job} changed while its history was being extended")
            if durable["jobs"].update_one({"_id": job, "seq": now["seq"]}, {"$set": changes}).modified_count:
                break
        else:
            raise RuntimeError(f"job {job} kept changing while its history was being extended")
        return len(steps)
    finally:
        client.close()
