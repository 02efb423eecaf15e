"""A job record for tests that build one by hand: neutral defaults, and each test names what matters."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pipelinejobs_server.domain.records import JobRecord

BORN = datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)


def job_record(**fields: Any) -> JobRecord:
    """A CREATED job at seq 0 with no links, data, tokens or history, born at ``BORN``; ``fields``
    replace any of that (``created_at`` also sets ``updated_at`` unless that is given too)."""
    born = fields.get("created_at", BORN)
    defaults: dict[str, Any] = {
        "uuid": "0b0f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11",
        "pipeline_uuid": "1c1f6a1e-3c1d-5b7e-9a55-5a1f0d7f2c11",
        "state": "CREATED",
        "seq": 0,
        "links": {},
        "data": {},
        "archive_path": "",
        "session": "",
        "agent": "",
        "task": "",
        "last_event": "",
        "head_hash": "",
        "created_at": born,
        "updated_at": born,
    }
    return JobRecord(**{**defaults, **fields})
