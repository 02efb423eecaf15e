"""Registering and reading pipelines."""

from __future__ import annotations

from typing import Any

from pipelinejobs_server.domain.clock import Clock
from pipelinejobs_server.domain.errors import InvalidArgument, PipelineNotFound
from pipelinejobs_server.domain.identity import normalize_components, pipeline_uuid
from pipelinejobs_server.domain.records import PipelineRecord
from pipelinejobs_server.settings import Limits
from pipelinejobs_server.storage.pipelines import PipelineStore

from . import paging, validation
from .credentials import Principal, Role, require

MAX_COMPONENTS = 256
LISTING = "pipelines"


class Pipelines:
    def __init__(self, limits: Limits, pipelines: PipelineStore, clock: Clock) -> None:
        self._limits = limits
        self._pipelines = pipelines
        self._clock = clock

    async def register(
        self,
        principal: Principal | None,
        *,
        name: str,
        description: str,
        components: list[tuple[str, str]],
        options: dict[str, Any],
    ) -> tuple[PipelineRecord, bool]:
        require(principal, Role.CLIENT)
        validation.text(name, "name", required=True, max_length=256)
        validation.text(description, "description", max_length=4096)
        if not components:
            raise InvalidArgument("components needs at least one component", field="components")
        if len(components) > MAX_COMPONENTS:
            raise InvalidArgument(f"at most {MAX_COMPONENTS} components", field="components")
        for component_id, version in components:
            validation.text(component_id, "components.id", required=True, max_length=256)
            validation.text(version, "components.version", max_length=128)
        validation.json_object(
            options,
            "options",
            max_bytes=self._limits.max_job_data_bytes,
            max_depth=self._limits.max_data_depth,
        )
        normalized = tuple(normalize_components(components))
        record = PipelineRecord(
            uuid=pipeline_uuid(normalized, options),
            name=name,
            description=description,
            components=normalized,
            options=options,
            created_at=self._clock.now(),
        )
        return await self._pipelines.register(record)

    async def get(self, principal: Principal | None, identity: str) -> PipelineRecord:
        require(principal, Role.CLIENT)
        record = await self._pipelines.get(validation.uuid_field(identity, "uuid"))
        if record is None:
            raise PipelineNotFound(identity)
        return record

    async def page(
        self, principal: Principal | None, page_token: str, page_size: int
    ) -> paging.Page[PipelineRecord]:
        """One page of pipelines, oldest first."""
        limit = paging.page_size(page_size, self._limits)
        after = paging.decode_moment(LISTING, page_token)
        require(principal, Role.CLIENT)
        records = await self._pipelines.page(after, limit)
        return paging.page(
            records, limit, lambda last: paging.encode_moment(LISTING, last.created_at, last.uuid)
        )
