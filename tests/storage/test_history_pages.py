"""A history page (``JobStore.entries_after``) reads its own range of the ``(job_uuid, seq)`` index, not
everything after it, so a deep page costs what the first does; and a page still finds the entries past a
gap in a damaged history. Against the real embedded database (its ``explain``)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pymongo.database import Database as SyncDatabase

from pipelinejobs_server.storage.database import HISTORY
from pipelinejobs_server.storage.jobs import JobStore, page_range
from tests.storage.test_jobs_batch import against

LIMIT = 10


def _log(db: SyncDatabase[dict[str, Any]], job: str, seqs: range | list[int]) -> None:
    # Readable entries; these tests look only at their seqs (no chain: the store does not check it).
    now = datetime.now(UTC)
    db[HISTORY].insert_many(
        [
            {"_id": str(uuid.uuid4()), "job_uuid": job, "seq": seq, "name": "update"}
            | {"from_state": "RUNNING", "to_state": "RUNNING", "timestamp": now}
            for seq in seqs
        ]
    )


def test_a_deep_page_examines_only_its_own_entries(
    mongodb_uri: str, database_name: str, db: SyncDatabase[dict[str, Any]]
) -> None:
    against(mongodb_uri, database_name, lambda store: _nothing())  # the service's indexes
    job = str(uuid.uuid4())
    _log(db, job, range(1, 2001))
    explained = db.command(
        "explain",
        {"find": HISTORY, "filter": {"job_uuid": job, "seq": page_range(100, LIMIT)}, "sort": {"seq": 1}},
        verbosity="executionStats",
    )
    stats = explained["executionStats"]
    assert stats["nReturned"] == LIMIT
    assert stats["totalKeysExamined"] <= LIMIT + 1, stats


async def _nothing() -> None:
    return None


def test_a_page_reads_past_a_gap_and_stops_at_the_end(
    mongodb_uri: str, database_name: str, db: SyncDatabase[dict[str, Any]]
) -> None:
    job = str(uuid.uuid4())

    async def pages(store: JobStore) -> list[list[int]]:
        _log(db, job, [*range(1, 6), *range(9, 14)])  # seq 6-8 missing, as in a damaged history
        return [[e.entry.seq for e in await store.entries_after(job, after, LIMIT)] for after in (0, 10, 13)]

    raw = against(mongodb_uri, database_name, pages)
    assert raw == [[1, 2, 3, 4, 5, 9, 10, 11, 12, 13], [11, 12, 13], []]
