"""The rejected-events log's bound (storage/rejected.py): the oldest rows of a job go past ``keep``, a summary
row counts them exactly (concurrent writers too), other jobs are untouched, and the TTL index follows the
retention setting. Against the real embedded database."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from pymongo.database import Database as SyncDatabase

from pipelinejobs_server.domain.records import RejectedEvent
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.storage.rejected import EXPIRY_INDEX, RejectedStore, summary_id

T = TypeVar("T")
START = datetime(2026, 1, 1, tzinfo=UTC)


def rejection(job: str, n: int) -> RejectedEvent:
    return RejectedEvent(
        uuid=str(uuid.uuid4()),
        job_uuid=job,
        event=f"STATUS-{n}",
        state="RUNNING",
        reason="UNMAPPED_STATUS",
        message=f"call {n}",
        data={"n": n},
        source="callback",
        timestamp=START + timedelta(seconds=n),
    )


def against(uri: str, name: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def run() -> T:
        database = Database(uri, name)
        try:
            await database.ensure_indexes()
            return await work(database)
        finally:
            await database.close()

    return asyncio.run(run())


def page(uri: str, name: str, job: str) -> list[RejectedEvent]:
    return against(uri, name, lambda database: RejectedStore(database).page(job, None, 1000))


def test_past_the_bound_the_oldest_go_and_a_summary_row_counts_them(
    embedded: EmbeddedDatabase, database_name: str
) -> None:
    job, other = str(uuid.uuid4()), str(uuid.uuid4())

    async def work(database: Database) -> None:
        store = RejectedStore(database, keep=5)
        for n in range(12):
            await store.record(rejection(job, n))
        await store.record(rejection(other, 0))

    against(embedded.uri, database_name, work)
    rows = page(embedded.uri, database_name, job)
    assert len(rows) == 5
    summary, *kept = rows
    assert (summary.uuid, summary.reason, summary.data) == (summary_id(job), "DROPPED", {"dropped": 8})
    assert summary.message.startswith("8 older rejected events of this job were dropped")
    assert summary.timestamp == START + timedelta(seconds=7)  # where the newest dropped row was
    assert [row.event for row in kept] == ["STATUS-8", "STATUS-9", "STATUS-10", "STATUS-11"]
    assert [row.event for row in page(embedded.uri, database_name, other)] == ["STATUS-0"]


def test_under_the_bound_nothing_is_dropped_and_there_is_no_summary(
    embedded: EmbeddedDatabase, database_name: str
) -> None:
    job = str(uuid.uuid4())

    async def work(database: Database) -> None:
        store = RejectedStore(database, keep=5)
        for n in range(5):
            await store.record(rejection(job, n))

    against(embedded.uri, database_name, work)
    assert [row.reason for row in page(embedded.uri, database_name, job)] == ["UNMAPPED_STATUS"] * 5


def test_concurrent_writers_keep_the_bound_and_an_exact_count(
    embedded: EmbeddedDatabase, database_name: str, db: SyncDatabase[dict[str, Any]]
) -> None:
    job = str(uuid.uuid4())
    calls = 60

    async def work(database: Database) -> None:
        # Several stores over one client, as replicas would be: each trims what it sees.
        stores = [RejectedStore(database, keep=10) for _ in range(4)]
        await asyncio.gather(*(stores[n % 4].record(rejection(job, n)) for n in range(calls)))
        await stores[0].record(rejection(job, calls))  # one writer after the rush trims what is left

    against(embedded.uri, database_name, work)
    rows = page(embedded.uri, database_name, job)
    assert len(rows) == 10
    (summary,) = [row for row in rows if row.reason == "DROPPED"]
    assert summary.data["dropped"] + (len(rows) - 1) == calls + 1  # every row is kept or counted, once
    assert db.rejected_events.count_documents({"_id": summary_id(job)}) == 1


def test_a_cancelled_jobs_log_goes_with_its_summary(embedded: EmbeddedDatabase, database_name: str) -> None:
    job = str(uuid.uuid4())

    async def work(database: Database) -> None:
        store = RejectedStore(database, keep=3)
        for n in range(6):
            await store.record(rejection(job, n))
        await store.purge(job)

    against(embedded.uri, database_name, work)
    assert page(embedded.uri, database_name, job) == []


def expiry(db: SyncDatabase[dict[str, Any]]) -> Any:
    return db.rejected_events.index_information().get(EXPIRY_INDEX, {}).get("expireAfterSeconds")


def test_the_ttl_index_follows_the_retention_setting(
    embedded: EmbeddedDatabase, database_name: str, db: SyncDatabase[dict[str, Any]]
) -> None:
    def retain(retention: timedelta | None) -> None:
        against(
            embedded.uri, database_name, lambda database: RejectedStore(database).ensure_retention(retention)
        )

    retain(None)
    assert expiry(db) is None
    retain(timedelta(days=30))
    assert expiry(db) == 30 * 86400
    assert db.rejected_events.index_information()[EXPIRY_INDEX]["key"] == [("timestamp", 1)]
    retain(timedelta(days=30))  # again, unchanged
    assert expiry(db) == 30 * 86400
    retain(timedelta(days=7))
    assert expiry(db) == 7 * 86400
    retain(None)
    assert EXPIRY_INDEX not in db.rejected_events.index_information()
