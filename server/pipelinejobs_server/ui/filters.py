"""The jobs table's filters: from the query string, to ``ListJobs`` arguments, and back to links.

The filters live in the URL (bookmarkable, and the browser's Back button pages back). Page tokens are the
service's opaque keyset tokens, which are bound to the filters that issued them and carry no secret.
Times are typed in UTC, as the service keeps them. Lab, experiment and sample are matched exactly, as
``ListJobs`` matches links (a scientist knows their sample's name; the service has no text search).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams

from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_client.names import state_name
from pipelinejobs_server.domain.errors import InvalidArgument

STATES = tuple(state_name(value) for value in job_pb2.JobState.values() if value)
PAGE_SIZES = (10, 25, 50, 100)
DEFAULT_PAGE_SIZE = 25
MAX_TEXT = 256
MAX_PAGES_BACK = 20  # "previous" goes this far back; keeps URLs short


def _moment(params: QueryParams, name: str) -> datetime | None:
    raw = params.get(name, "").strip()
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidArgument(
            f"{name} must be a date and time such as 2026-05-01T09:30", field=name
        ) from None
    # A datetime-local input has no zone: it is read as UTC, which the form says.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _text(params: QueryParams, name: str) -> str:
    value = params.get(name, "").strip()
    if len(value) > MAX_TEXT:
        raise InvalidArgument(f"{name} is longer than {MAX_TEXT} characters", field=name)
    return value


@dataclass(frozen=True)
class JobQuery:
    pipeline: str = ""
    states: tuple[str, ...] = ()
    lab: str = ""
    experiment: str = ""
    sample: str = ""
    created_from: datetime | None = None
    created_to: datetime | None = None
    size: int = DEFAULT_PAGE_SIZE
    page: str = ""  # the service's page token
    pages: tuple[str, ...] = field(default=())  # tokens of the pages before this one, for "previous"

    @property
    def counted_by_listing(self) -> bool:
        """Whether a filter applies that CountJobs does not count by (links, creation times)."""
        return bool(self.lab or self.experiment or self.sample or self.created_from or self.created_to)

    @classmethod
    def from_params(cls, params: QueryParams) -> JobQuery:
        """The filters of a request; an unknown state or a malformed time is an ``InvalidArgument``."""
        states = tuple(dict.fromkeys(value.strip().upper() for value in params.getlist("state") if value))
        for state in states:
            if state not in STATES:
                raise InvalidArgument(f"unknown state {state!r}", field="state")
        size_text = params.get("size", "") or str(DEFAULT_PAGE_SIZE)
        if size_text not in {str(size) for size in PAGE_SIZES}:
            raise InvalidArgument(f"size must be one of {', '.join(map(str, PAGE_SIZES))}", field="size")
        return cls(
            pipeline=_text(params, "pipeline"),
            states=states,
            lab=_text(params, "lab"),
            experiment=_text(params, "experiment"),
            sample=_text(params, "sample"),
            created_from=_moment(params, "from"),
            created_to=_moment(params, "to"),
            size=int(size_text),
            page=_text(params, "page"),
            pages=tuple(params.getlist("prev"))[-MAX_PAGES_BACK:],
        )

    def list_arguments(self, *, states: tuple[str, ...] | None = None) -> dict[str, Any]:
        """Keyword arguments of ``AsyncJobsClient.list_jobs`` for these filters (without paging)."""
        return {
            "pipeline_uuid": self.pipeline,
            "states": self.states if states is None else states,
            "lab": [self.lab] if self.lab else [],
            "experiment": [self.experiment] if self.experiment else [],
            "sample": [self.sample] if self.sample else [],
            "created_after": self.created_from,
            "created_before": self.created_to,
        }

    def _params(self) -> list[tuple[str, str]]:
        pairs: list[tuple[str, str]] = []
        if self.pipeline:
            pairs.append(("pipeline", self.pipeline))
        pairs += [("state", state) for state in self.states]
        pairs += [(name, value) for name, value in self._links() if value]
        for name, moment in (("from", self.created_from), ("to", self.created_to)):
            if moment is not None:
                pairs.append((name, form_moment(moment)))
        if self.size != DEFAULT_PAGE_SIZE:
            pairs.append(("size", str(self.size)))
        return pairs

    def _links(self) -> tuple[tuple[str, str], ...]:
        return (("lab", self.lab), ("experiment", self.experiment), ("sample", self.sample))

    def href(self, **changes: Any) -> str:
        """The query string (``?…``) of these filters with ``changes``, on their first page."""
        changed = replace(self, page="", pages=(), **changes)
        query = urlencode(changed._params())
        return f"?{query}" if query else "?"

    def next_href(self, token: str) -> str:
        pairs = [*self._params(), *(("prev", p) for p in (*self.pages, self.page)), ("page", token)]
        return "?" + urlencode(pairs)

    def previous_href(self) -> str | None:
        """The page before this one, or None on the first page."""
        if not self.page:
            return None
        *earlier, last = self.pages or ("",)
        pairs = [*self._params(), *(("prev", p) for p in earlier)]
        if last:
            pairs.append(("page", last))
        return "?" + urlencode(pairs)

    @property
    def number(self) -> int:
        """1 for the first page, 2 for the next …"""
        return len(self.pages) + 1 if self.page else 1


def form_moment(moment: datetime) -> str:
    """A time as a datetime-local input shows it (UTC, to the minute)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")
