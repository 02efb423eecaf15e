"""Reading the event feed through the raw stubs, for the feed's tests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

from pymongo.database import Database

from pipelinejobs_client.api.v1 import feed_pb2
from pipelinejobs_server.app import build_feed
from pipelinejobs_server.domain.clock import SYSTEM_CLOCK
from pipelinejobs_server.domain.records import RecordedEntry
from pipelinejobs_server.settings import Settings
from pipelinejobs_server.storage.database import Database as ServiceDatabase
from pipelinejobs_server.storage.documents import event_to_document, job_from_document
from tests.support import CLIENT, Stubs, eventually

Db = Database[dict[str, Any]]


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


def marked(db: Db) -> bool:
    """Whether the writers mark their entries for the relay: on a database without change streams."""
    return "setName" not in db.client.admin.command("hello")


def left_behind(db: Db, job_uuid: str, name: str = "update") -> RecordedEntry:
    """Insert the job's next entry without advancing its record: a writer that died between its writes."""
    record = job_from_document(db.jobs.find_one({"_id": job_uuid}) or {})
    entry = record.next_entry(
        name,
        record.state,
        uuid=str(uuid.uuid4()),
        timestamp=record.updated_at,
        data={"left": True},
        source="grpc",
    )
    recorded = RecordedEntry.of(entry)
    db.job_events.insert_one(event_to_document(entry, recorded.hash, marked=marked(db)))
    return recorded


async def rounds_of_another_relay(uri: str, name: str, rounds: int) -> None:
    """A relay of another replica (the lease ignored), ``rounds`` rounds from the stored resume point,
    then gone: as a relay killed after them leaves the feed."""
    database = ServiceDatabase(uri, name)
    try:
        relay = build_feed(Settings(), database, SYSTEM_CLOCK).relay
        for _ in range(rounds):
            await relay.relay_once()
    finally:
        await database.close()
