"""CountJobs: jobs per state, from the counters the write path keeps (storage/counts.py, ADR 014)."""

from __future__ import annotations

from dataclasses import dataclass

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.storage.counts import ALL, Counters

from . import validation
from .credentials import Principal, Role, require


@dataclass(frozen=True)
class JobCounts:
    """Every state of the machine in its order, zeros included; ``exact`` as storage says."""

    states: tuple[tuple[str, int], ...]
    exact: bool

    @property
    def total(self) -> int:
        return sum(n for _, n in self.states)


class JobCounting:
    def __init__(self, counters: Counters) -> None:
        self._counters = counters

    async def count(self, principal: Principal | None, pipeline_uuid: str) -> JobCounts:
        require(principal, Role.CLIENT)
        if pipeline_uuid:
            validation.uuid_field(pipeline_uuid, "pipeline_uuid")
        found = await self._counters.counts(pipeline_uuid or ALL)
        return JobCounts(tuple((state, found.states.get(state, 0)) for state in fsm.STATES), found.exact)
