"""Records to MongoDB documents and back.

Event and job ``data`` are stored as their canonical JSON text, not as BSON sub-documents: user JSON may
hold keys MongoDB refuses or rewrites (``$where``, dotted names) and numbers it would retype, and the
history hash must be recomputable from exactly what was stored.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.history import Entry
from pipelinejobs_server.domain.records import (
    JobRecord,
    PipelineRecord,
    RecordedEntry,
    RejectedEvent,
)
from pipelinejobs_server.domain.tokens import StoredToken

from .database import Document


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def as_utc(moment: datetime) -> datetime:
    """A time read from the database, as an aware UTC datetime."""
    return _utc(moment)


def _json(text: str) -> dict[str, Any]:
    value = json.loads(text)
    return value if isinstance(value, dict) else {}


def pipeline_to_document(record: PipelineRecord) -> Document:
    return {
        "_id": record.uuid,
        "name": record.name,
        "description": record.description,
        "components": [{"id": cid, "version": version} for cid, version in record.components],
        "options_json": canonical_json(record.options),
        "created_at": record.created_at,
    }


def pipeline_from_document(document: Document) -> PipelineRecord:
    return PipelineRecord(
        uuid=document["_id"],
        name=document.get("name", ""),
        description=document.get("description", ""),
        components=tuple((c["id"], c.get("version", "")) for c in document.get("components", [])),
        options=_json(document.get("options_json", "{}")),
        created_at=_utc(document["created_at"]),
    )


def token_to_document(token: StoredToken) -> Document:
    return {"h": token.digest, "exp": token.expires_at}


def job_to_document(record: JobRecord) -> Document:
    document: Document = {
        "_id": record.uuid,
        "pipeline_uuid": record.pipeline_uuid,
        "state": record.state,
        "seq": record.seq,
        "links": record.links,
        "data_json": canonical_json(record.data),
        "archive_path": record.archive_path,
        "session": record.session,
        "agent": record.agent,
        "task": record.task,
        "last_event": record.last_event,
        "head_hash": record.head_hash,
        "created_at": record.created_at,
        "updated_at": record.updated_at,
        "tokens": [token_to_document(token) for token in record.tokens],
        "creator": record.creator,
        "ever_running": record.ever_running,
        "cancelled": record.cancelled,
    }
    if record.listed_at is not None:
        document["listed_at"] = record.listed_at
    return document


def job_from_document(document: Document) -> JobRecord:
    return JobRecord(
        uuid=document["_id"],
        pipeline_uuid=document["pipeline_uuid"],
        state=document["state"],
        seq=int(document["seq"]),
        links={kind: list(values) for kind, values in document.get("links", {}).items()},
        data=_json(document.get("data_json", "{}")),
        archive_path=document.get("archive_path", ""),
        session=document.get("session", ""),
        agent=document.get("agent", ""),
        task=document.get("task", ""),
        last_event=document.get("last_event", ""),
        head_hash=document.get("head_hash", ""),
        created_at=_utc(document["created_at"]),
        updated_at=_utc(document["updated_at"]),
        tokens=tuple(StoredToken(t["h"], _utc(t["exp"])) for t in document.get("tokens", [])),
        creator=document.get("creator", ""),
        ever_running=bool(document.get("ever_running", False)),
        cancelled=bool(document.get("cancelled", False)),
        listed_at=_utc(document["listed_at"]) if document.get("listed_at") else None,
    )


def event_to_document(entry: Entry, digest: str, *, marked: bool = False) -> Document:
    """``marked``: with ``feed_pending``, for a database without change streams, where the feed's relay
    finds the entries it has not fed by that mark (service/feed_finding.py). Not part of the entry, nor
    of its hash."""
    document: Document = {
        "_id": entry.uuid,
        "job_uuid": entry.job_uuid,
        "seq": entry.seq,
        "name": entry.name,
        "from_state": entry.from_state,
        "to_state": entry.to_state,
        "timestamp": entry.timestamp,
        "data_json": canonical_json(entry.data),
        "source": entry.source,
        "prev_hash": entry.prev_hash,
        "hash": digest,
    }
    if marked:
        document["feed_pending"] = True  # until the relay fed it: a partial index holds only these
    # Absent rather than empty, so the partial unique index only covers events that carry a key.
    if entry.idempotency_key:
        document["idempotency_key"] = entry.idempotency_key
    return document


def event_from_document(document: Document) -> RecordedEntry:
    entry = Entry(
        job_uuid=document["job_uuid"],
        seq=int(document["seq"]),
        uuid=document["_id"],
        name=document["name"],
        from_state=document["from_state"],
        to_state=document["to_state"],
        timestamp=_utc(document["timestamp"]),
        data=_json(document.get("data_json", "{}")),
        source=document.get("source", ""),
        idempotency_key=document.get("idempotency_key", ""),
        prev_hash=document.get("prev_hash", ""),
    )
    return RecordedEntry(entry, document.get("hash", ""))


def rejected_to_document(record: RejectedEvent) -> Document:
    return {
        "_id": record.uuid,
        "job_uuid": record.job_uuid,
        "event": record.event,
        "state": record.state,
        "reason": record.reason,
        "message": record.message,
        "data_json": canonical_json(record.data),
        "source": record.source,
        "timestamp": record.timestamp,
        "extra": record.extra,
    }


# A job's summary row of the rejected events its bounded log dropped (storage/rejected.py): the count is a
# number in the document, so that writers can add to it; the row reads as a rejected event that says so.
DROPPED_FIELD = "dropped"


def rejected_from_document(document: Document) -> RejectedEvent:
    dropped = document.get(DROPPED_FIELD)
    message, data = document.get("message", ""), _json(document.get("data_json", "{}"))
    if isinstance(dropped, int):
        message = f"{dropped} older rejected events of this job were dropped: the log keeps the newest"
        data = {DROPPED_FIELD: dropped}
    return RejectedEvent(
        uuid=document["_id"],
        job_uuid=document.get("job_uuid", ""),
        event=document.get("event", ""),
        state=document.get("state", ""),
        reason=document.get("reason", ""),
        message=message,
        data=data,
        source=document.get("source", ""),
        timestamp=_utc(document["timestamp"]),
        extra=dict(document.get("extra", {})),
    )
