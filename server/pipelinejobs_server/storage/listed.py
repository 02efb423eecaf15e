"""The listing copy of a job (``job_listing``, ADR 013): what ListJobs filters and orders by, apart from
the record that every event rewrites.

SecantusDB rewrites every index entry of a document on every update, whichever fields changed, so the
listing indexes live on a document of their own, written only when what it holds changes enough to
matter: the job's state (exact), or its update time once it lags by ``GRANULARITY`` (so ListJobs' order
and ranges by update time are right to within that). The record keeps ``listed_at``, the update time
last written here, so that a writer decides without reading the listing.

The listing is written before the record's compare-and-set, by ``JobStore.advance`` and
``advance_many`` alike, so every writer and every roll-forward keeps it up: a crash between the two
leaves the record behind its history, and the next reader's roll-forward writes the listing again.
The write is filtered on ``listed_seq``: a late writer cannot move a listing back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pymongo import UpdateOne

from pipelinejobs_server.domain.records import JobRecord

GRANULARITY = timedelta(seconds=1)
LISTED_SEQ = "listed_seq"


def due(before: JobRecord, after: JobRecord) -> bool:
    """Whether moving the record from ``before`` to ``after`` must rewrite its listing."""
    if before.listed_at is None or after.state != before.state:
        return True
    return after.updated_at - before.listed_at >= GRANULARITY


def listing_document(record: JobRecord) -> dict[str, Any]:
    """The listing of a record: the fields ListJobs filters and orders by."""
    return {
        "_id": record.uuid,
        "pipeline_uuid": record.pipeline_uuid,
        "state": record.state,
        "links": record.links,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        LISTED_SEQ: record.seq,
    }


def listing_write(after: JobRecord) -> UpdateOne:
    """Upsert the listing of ``after`` unless it already lists this seq or a later one (a duplicate key
    then: the upsert's insert collides with the newer listing, and is ignored)."""
    fields = listing_document(after)
    del fields["_id"]
    return UpdateOne({"_id": after.uuid, LISTED_SEQ: {"$lt": after.seq}}, {"$set": fields}, upsert=True)
