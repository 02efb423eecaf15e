"""Reading the event feed through the raw stubs, for the feed's tests."""

from __future__ import annotations

from collections.abc import Iterator

from pipelinejobs_client.api.v1 import feed_pb2
from tests.support import CLIENT, Stubs, eventually


def list_all(
    api: Stubs, after: str = "", feed_filter: feed_pb2.FeedFilter | None = None, page_size: int = 0
) -> tuple[list[feed_pb2.FeedEntry], str]:
    """Every entry after ``after``, page by page until caught up; and the last cursor."""
    entries: list[feed_pb2.FeedEntry] = []
    while True:
        reply = api.jobs.ListEvents(
            feed_pb2.ListEventsRequest(
                after_cursor=after, filter=feed_filter, page_size=page_size, view=feed_pb2.FEED_VIEW_FULL
            ),
            metadata=CLIENT,
            timeout=30,
        )
        entries.extend(reply.entries)
        after = reply.next_cursor
        if reply.caught_up:
            return entries, after


def fed(
    api: Stubs, count: int, feed_filter: feed_pb2.FeedFilter | None = None, *, timeout_s: float = 30
) -> list[feed_pb2.FeedEntry]:
    """The feed once it holds ``count`` entries (the relay feeds within a poll)."""
    found: list[feed_pb2.FeedEntry] = []

    def enough() -> bool:
        nonlocal found
        found = list_all(api, feed_filter=feed_filter)[0]
        return len(found) >= count

    eventually(enough, timeout_s, what=f"{count} entries in the feed")
    return found


def watch(
    api: Stubs, request: feed_pb2.WatchEventsRequest, timeout: float = 60
) -> Iterator[feed_pb2.WatchEventsResponse]:
    yield from api.jobs.WatchEvents(request, metadata=CLIENT, timeout=timeout)


def keys(entries: list[feed_pb2.FeedEntry]) -> list[tuple[str, int, int]]:
    return [(entry.job_uuid, entry.seq, entry.kind) for entry in entries]
