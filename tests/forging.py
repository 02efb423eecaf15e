"""Crash leftovers forged with pymongo, the way a writer killed between its writes leaves them (ADR 003)."""

from __future__ import annotations

import uuid
from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from pipelinejobs_server.domain.history import Entry, utc_now_ms
from pipelinejobs_server.storage.documents import event_from_document, event_to_document

Document = dict[str, Any]


def forge_next(db: Database[Document], job: str, name: str, to_state: str, *, advance_record: bool) -> Entry:
    """A correctly hashed entry after the job's last one; the record is advanced only if asked."""
    last = event_from_document(db.job_events.find_one({"job_uuid": job}, sort=[("seq", DESCENDING)]) or {})
    entry = Entry(
        job_uuid=job,
        seq=last.entry.seq + 1,
        uuid=str(uuid.uuid4()),
        name=name,
        from_state=last.entry.to_state,
        to_state=to_state,
        timestamp=utc_now_ms(),
        data={},
        source="grpc",
        idempotency_key="",
        prev_hash=last.hash,
    )
    db.job_events.insert_one(event_to_document(entry, entry.digest()))
    if advance_record:
        changes = {"seq": entry.seq, "state": to_state, "last_event": name, "head_hash": entry.digest()}
        db.jobs.update_one({"_id": job}, {"$set": changes})
    return entry
