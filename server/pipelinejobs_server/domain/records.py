"""Records the service layer reads and writes through storage."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .history import Entry
from .tokens import StoredToken


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
    # Decides CancelJob: a job that was ever RUNNING may not be deleted (kept in the record, not the client).
    ever_running: bool = False
    # Set by CancelJob before it deletes the job's history, so that no event can slip in meanwhile.
    cancelled: bool = False


@dataclass(frozen=True)
class RecordedEvent:
    """A history entry as stored, with the hash that was stored beside it."""

    entry: Entry
    hash: str


@dataclass(frozen=True)
class RejectedRecord:
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
