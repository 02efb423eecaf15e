"""The feed's messages (ListEvents, WatchEvents) to domain filters and back."""

from __future__ import annotations

from collections.abc import Callable

from pipelinejobs_client.api.v1 import feed_pb2, job_pb2
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.domain.feed import CANCELLED, FeedEntry, FeedFilter
from pipelinejobs_server.service.feed import Bookmark

from .convert import (
    dict_to_struct,
    event_from_proto,
    event_to_proto,
    source_from_proto,
    source_to_proto,
    state_from_proto,
    state_to_proto,
    timestamp,
)
from .listing import _utc


def _names(values: list[int], convert: Callable[[int], str], field: str) -> tuple[str, ...]:
    names = []
    for value in values:
        name = convert(value)
        if not name:
            raise InvalidArgument(f"{field} must not hold the unspecified value", field=field)
        names.append(name)
    return tuple(dict.fromkeys(names))  # duplicates folded, as in ListJobs


def _event(value: int) -> str:
    try:
        return event_from_proto(value)
    except InvalidArgument:
        raise InvalidArgument(
            f"filter.events: {value} is not one of the JobEvent values", field="filter.events"
        ) from None


def feed_filter(message: feed_pb2.FeedFilter) -> FeedFilter:
    links = {
        "lab": tuple(message.links.lab),
        "experiment": tuple(message.links.experiment),
        "sample": tuple(message.links.sample),
    }
    return FeedFilter(
        pipeline_uuids=tuple(dict.fromkeys(message.pipeline_uuids)),
        events=_names(list(message.events), _event, "filter.events"),
        to_states=_names(
            list(message.to_states), lambda v: state_from_proto(v, "filter.to_states"), "filter.to_states"
        ),
        job_uuids=tuple(dict.fromkeys(message.job_uuids)),
        sources=_names(list(message.sources), source_from_proto, "filter.sources"),
        links={kind: values for kind, values in links.items() if values},
        include_cancelled=message.include_cancelled,
    )


def full_view(value: int) -> bool:
    if value not in feed_pb2.FeedView.values():
        raise InvalidArgument(f"view must be one of the FeedView values, got {value}", field="view")
    return value == feed_pb2.FEED_VIEW_FULL


def entry_to_proto(entry: FeedEntry, cursor: str, *, full: bool) -> feed_pb2.FeedEntry:
    cancelled = entry.kind == CANCELLED
    message = feed_pb2.FeedEntry(
        cursor=cursor,
        kind=feed_pb2.FEED_ENTRY_KIND_CANCELLED if cancelled else feed_pb2.FEED_ENTRY_KIND_EVENT,
        job_uuid=entry.job_uuid,
        pipeline_uuid=entry.pipeline_uuid,
        links=job_pb2.JobLinks(
            lab=entry.links.get("lab", []),
            experiment=entry.links.get("experiment", []),
            sample=entry.links.get("sample", []),
        ),
        seq=entry.seq,
        event=event_to_proto(entry.name),
        from_state=state_to_proto(entry.from_state),
        to_state=state_to_proto(entry.to_state),
        timestamp=timestamp(entry.timestamp),
        source=source_to_proto(entry.source) if entry.source else job_pb2.EVENT_SOURCE_UNSPECIFIED,
        hash=entry.hash,
        uuid=entry.uuid,
        feed_time=timestamp(entry.fed_at),
    )
    if full:
        message.data.CopyFrom(dict_to_struct(entry.data))
    return message


def bookmark_to_proto(bookmark: Bookmark) -> feed_pb2.FeedBookmark:
    return feed_pb2.FeedBookmark(cursor=bookmark.cursor, time=timestamp(bookmark.time))


end_time = _utc
