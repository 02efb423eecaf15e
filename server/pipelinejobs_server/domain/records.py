"""Records the service layer reads and writes through storage, and what a job record is after entries.

A job record is a summary of its history: ``seq``, ``state``, ``last_event``, ``head_hash``, ``updated_at``
and ``ever_running`` are read off its last entry. ``JobRecord.advanced`` is that rule, written once, for
the service (the answer to an event), storage (the compare-and-set's update) and the doctor (the check).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Final

from . import fsm
from .history import Entry
from .tokens import StoredToken

ADVANCED_FIELDS: Final = ("seq", "state", "last_event", "head_hash", "updated_at", "ever_running")
"""The fields of a job record that its entries decide (``JobRecord.advanced``)."""


@dataclass(frozen=True)
class PipelineRecord:
    uuid: str
    name: str
    description: str
    components: tuple[tuple[str, str], ...]
    options: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class JobRecord:
    uuid: str
    pipeline_uuid: str
    state: str
    seq: int
    links: dict[str, list[str]]
    data: dict[str, Any]
    archive_path: str
    session: str
    agent: str
    task: str
    last_event: str
    head_hash: str
    created_at: datetime
    updated_at: datetime
    tokens: tuple[StoredToken, ...] = ()
    # The id of the API key that created the job (service.credentials.Principal.key_id); only that key
    # (and admin keys) get fresh tokens for it. "" for jobs created before creators were recorded.
    creator: str = ""
    # Decides CancelJob: a job that was ever RUNNING may not be deleted (kept in the record, not the client).
    ever_running: bool = False
    # Set by CancelJob before it deletes the job's history, so that no event can slip in meanwhile.
    cancelled: bool = False
    # The update time last written to the job's listing (storage/listed.py); None: never listed.
    listed_at: datetime | None = None

    def next_entry(
        self,
        name: str,
        to_state: str,
        *,
        uuid: str,
        timestamp: datetime,
        data: dict[str, Any],
        source: str,
        idempotency_key: str = "",
    ) -> Entry:
        """The entry that would follow this record's last one (the creation entry for a record at seq 0)."""
        return Entry(
            job_uuid=self.uuid,
            seq=self.seq + 1,
            uuid=uuid,
            name=name,
            from_state=self.state if self.seq else "",
            to_state=to_state,
            timestamp=timestamp,
            data=data,
            source=source,
            idempotency_key=idempotency_key,
            prev_hash=self.head_hash,
        )

    def advanced(self, entries: Sequence[RecordedEntry]) -> JobRecord:
        """The record after ``entries``, which continue it in seq order (``seq + 1``, ``seq + 2``, ...)."""
        if not entries:
            return self
        last = entries[-1]
        return replace(
            self,
            seq=last.entry.seq,
            state=last.entry.to_state,
            last_event=last.entry.name,
            head_hash=last.hash,
            updated_at=last.entry.timestamp,
            ever_running=self.ever_running or any(fsm.marks_started(e.entry.to_state) for e in entries),
        )


@dataclass(frozen=True)
class RecordedEntry:
    """A history entry as stored, with the hash that was stored beside it."""

    entry: Entry
    hash: str

    @classmethod
    def of(cls, entry: Entry) -> RecordedEntry:
        """A new entry with its own hash, as it will be stored."""
        return cls(entry, entry.digest())


# The reason of a job's summary row in the rejected-events log: how many older rejections the bounded log
# dropped (storage/rejected.py). Reserved: no caller may send it as a rejection's reason.
DROPPED_REASON = "DROPPED"


@dataclass(frozen=True)
class RejectedEvent:
    uuid: str
    job_uuid: str
    event: str
    state: str
    reason: str
    message: str
    data: dict[str, Any]
    source: str
    timestamp: datetime
    extra: dict[str, str] = field(default_factory=dict)
