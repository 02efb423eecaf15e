"""Registered pipelines."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from pipelinejobs_server.domain.records import PipelineRecord

from .database import Database, translate_errors
from .documents import pipeline_from_document, pipeline_to_document


class PipelineStore:
    def __init__(self, database: Database) -> None:
        self._pipelines = database.collections.pipelines

    @translate_errors
    async def register(self, record: PipelineRecord) -> tuple[PipelineRecord, bool]:
        """Insert the pipeline unless its uuid exists; return the stored one and whether it is new."""
        try:
            await self._pipelines.insert_one(pipeline_to_document(record))
        except DuplicateKeyError:
            existing = await self._pipelines.find_one({"_id": record.uuid})
            if existing is not None:
                return pipeline_from_document(existing), False
            raise
        return record, True

    @translate_errors
    async def get(self, pipeline_uuid: str) -> PipelineRecord | None:
        document = await self._pipelines.find_one({"_id": pipeline_uuid})
        return None if document is None else pipeline_from_document(document)

    @translate_errors
    async def page(self, after: tuple[datetime, str] | None, limit: int) -> list[PipelineRecord]:
        """Pipelines oldest first, after the keyset position ``(created_at, uuid)``."""
        query: dict[str, Any] = {}
        if after is not None:
            created, uuid = after
            query = {"$or": [{"created_at": {"$gt": created}}, {"created_at": created, "_id": {"$gt": uuid}}]}
        cursor = (
            self._pipelines.find(query).sort([("created_at", ASCENDING), ("_id", ASCENDING)]).limit(limit)
        )
        return [pipeline_from_document(document) async for document in cursor]
