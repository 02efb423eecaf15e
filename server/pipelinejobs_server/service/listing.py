"""ListJobs: checking filters and issuing keyset page tokens bound to them."""

from __future__ import annotations

import hashlib
from dataclasses import asdict

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.domain.identity import LINK_KINDS
from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position
from pipelinejobs_server.domain.records import JobRecord
from pipelinejobs_server.settings import Limits
from pipelinejobs_server.storage.jobs import JobStore

from . import paging, validation
from .credentials import Principal, Role, require


def _fingerprint(job_filter: JobFilter, order: JobOrder) -> str:
    """A short digest of the filters and order: a page token only continues the listing it came from."""
    described = asdict(job_filter)
    for key in ("created", "updated"):
        described[key] = {
            end: (moment.isoformat() if moment else None) for end, moment in described[key].items()
        }
    described["order"] = order.name
    return hashlib.sha256(canonical_json(described).encode()).hexdigest()[:16]


def _check(job_filter: JobFilter) -> None:
    if job_filter.pipeline_uuid:
        validation.uuid_field(job_filter.pipeline_uuid, "pipeline_uuid")
    if len(job_filter.states) > len(fsm.STATES):
        raise InvalidArgument(f"at most {len(fsm.STATES)} states, each once", field="states")
    for state in job_filter.states:
        if not fsm.is_state(state):
            raise InvalidArgument(f"unknown state {state!r}", field="states")
    for kind, values in job_filter.links.items():
        if kind not in LINK_KINDS:
            raise InvalidArgument(f"unknown link kind {kind!r}", field="links")
        validation.link_count(values, kind)
    for name, moments in (("create_time", job_filter.created), ("update_time", job_filter.updated)):
        if moments.start and moments.end and moments.start >= moments.end:
            raise InvalidArgument(f"{name}: start_time must be before end_time", field=name)


class JobListing:
    def __init__(self, store: JobStore, limits: Limits) -> None:
        self._store = store
        self._limits = limits

    async def page(
        self,
        principal: Principal | None,
        job_filter: JobFilter,
        order: JobOrder,
        page_token: str,
        page_size: int,
    ) -> paging.Page[JobRecord]:
        """One page of jobs; its token continues after any of them ("" after the last page)."""
        require(principal, Role.CLIENT)
        _check(job_filter)
        limit = paging.page_size(page_size, self._limits)
        listing = f"jobs:{_fingerprint(job_filter, order)}"
        decoded = paging.decode_moment(listing, page_token)
        position = Position(*decoded) if decoded else None
        # One extra row tells whether another page exists, so the last page never hands out a token.
        rows = await self._store.page(job_filter, order, position, limit + 1)

        def token_after(last: JobRecord) -> str:
            moment = last.created_at if order.field == "created_at" else last.updated_at
            return paging.encode_moment(listing, moment, last.uuid)

        return paging.Page(rows[:limit], token_after, more=len(rows) > limit)
