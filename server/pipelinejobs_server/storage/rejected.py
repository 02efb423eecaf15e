"""The rejected-events log: events received but not applied, kept with the reason for operators."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING

from pipelinejobs_server.domain.records import RejectedEvent

from .database import Database, translate_errors
from .documents import rejected_from_document, rejected_to_document


class RejectedStore:
    def __init__(self, database: Database) -> None:
        self._rejected = database.collections.rejected_events

    @translate_errors
    async def record(self, record: RejectedEvent) -> None:
        await self._rejected.insert_one(rejected_to_document(record))

    @translate_errors
    async def page(
        self, job_uuid: str | None, after: tuple[datetime, str] | None, limit: int
    ) -> list[RejectedEvent]:
        """Oldest first, for one job or for all, after the keyset position ``(timestamp, uuid)``."""
        query: dict[str, Any] = {} if job_uuid is None else {"job_uuid": job_uuid}
        if after is not None:
            moment, uuid = after
            query["$or"] = [{"timestamp": {"$gt": moment}}, {"timestamp": moment, "_id": {"$gt": uuid}}]
        cursor = self._rejected.find(query).sort([("timestamp", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        return [rejected_from_document(document) async for document in cursor]

    @translate_errors
    async def purge(self, job_uuid: str) -> None:
        await self._rejected.delete_many({"job_uuid": job_uuid})
