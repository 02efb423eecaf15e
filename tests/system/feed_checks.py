"""Readers of the event feed that follow it while a load runs, and the checks of DESIGN section 12 on what
they read: every accepted event once, each job's entries in seq order, and from any cursor exactly what
follows it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from pipelinejobs_client import JobsClient
from pipelinejobs_client.api.v1 import feed_pb2
from pipelinejobs_client.errors import DeadlineExceeded, PipelineJobsError
from pipelinejobs_client.retry import NO_RETRY
from tests.support import CLIENT_KEY, eventually


@dataclass(frozen=True)
class Seen:
    uuid: str
    job_uuid: str
    seq: int
    kind: int
    cursor: str


def seen(entry: feed_pb2.FeedEntry) -> Seen:
    return Seen(entry.uuid, entry.job_uuid, entry.seq, entry.kind, entry.cursor)


@dataclass
class Follower:
    """Follows the feed from its start on the replica ``address()`` names, with WatchEvents (``watch``) or
    ListEvents polls, and reconnects after any failure from the last cursor it got, on whichever replica
    ``address()`` names then: a reader resuming on another replica after a kill or a restart."""

    address: Callable[[], str]
    watch: bool
    entries: list[Seen] = field(default_factory=list)
    reconnects: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    cursor: str = ""

    def __enter__(self) -> Follower:
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=60)
        assert not self._thread.is_alive(), "the follower is stuck"

    def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                with JobsClient(self.address(), api_key=CLIENT_KEY, timeout=5, retry=NO_RETRY) as client:
                    self._read(client)
            except PipelineJobsError:
                self.reconnects += 1
                time.sleep(0.1)

    def _read(self, client: JobsClient) -> None:
        while not self._stop.is_set():
            if self.watch:
                try:
                    # Short watches on purpose: each one resumes from the cursor the last one left.
                    for item in client.watch_events(
                        after_cursor=self.cursor, bookmarks=True, timeout=2, resume=False
                    ):
                        if isinstance(item, feed_pb2.FeedEntry):
                            self.entries.append(seen(item))
                        self.cursor = item.cursor
                except DeadlineExceeded:
                    continue
            else:
                page = client.list_events(after_cursor=self.cursor, page_size=7)
                self.entries.extend(seen(entry) for entry in page.entries)
                self.cursor = page.next_cursor
                if page.caught_up:
                    time.sleep(0.05)

    def wait_for(self, count: int) -> None:
        eventually(lambda: len(self.entries) >= count, timeout_s=60, what=f"{count} entries followed")


def whole_feed(address: str) -> list[Seen]:
    with JobsClient(address, api_key=CLIENT_KEY) as client:
        return [seen(entry) for entry in client.iter_events(page_size=1000)]


def histories(address: str, jobs: list[str]) -> dict[str, list[tuple[str, int, str]]]:
    """Each job's history as (uuid, seq, hash), read through the API (which rolls forward leftovers)."""
    with JobsClient(address, api_key=CLIENT_KEY) as client:
        return {
            job: [(e.uuid, e.seq, e.hash) for e in client.iter_job_events(job, page_size=1000)]
            for job in jobs
        }


def wait_for_the_feed(
    address: str, jobs: list[str]
) -> tuple[list[Seen], dict[str, list[tuple[str, int, str]]]]:
    """The whole feed once it holds every entry of every job's history (the relay is within a poll)."""
    history = histories(address, jobs)
    expected = sum(len(entries) for entries in history.values())
    found: list[Seen] = []

    def complete() -> bool:
        nonlocal found
        found = whole_feed(address)
        return len(found) >= expected

    eventually(complete, timeout_s=60, what=f"{expected} entries in the feed")
    return found, history


def check_feed(feed: list[Seen], history: dict[str, list[tuple[str, int, str]]]) -> None:
    """DESIGN 12: every accepted event exactly once; a job's entries in seq order; nothing else."""
    uuids = [entry.uuid for entry in feed]
    assert len(uuids) == len(set(uuids)), "an entry is in the feed twice"
    accepted = {uuid for entries in history.values() for uuid, _, _ in entries}
    assert set(uuids) == accepted, (
        f"missing: {sorted(accepted - set(uuids))[:5]}, not accepted: {sorted(set(uuids) - accepted)[:5]}"
    )
    for job, entries in history.items():
        assert [entry.seq for entry in feed if entry.job_uuid == job] == [seq for _, seq, _ in entries]


def check_follower(follower: Follower, feed: list[Seen]) -> None:
    """A reader that resumed from its cursors read the feed as it is: nothing skipped, nothing repeated."""
    follower.wait_for(len(feed))
    assert [entry.uuid for entry in follower.entries] == [entry.uuid for entry in feed]


def check_every_cursor(addresses: list[str], feed: list[Seen]) -> None:
    """From each cursor handed out, on each replica in turn: exactly the entries after it."""
    clients = [JobsClient(address, api_key=CLIENT_KEY) for address in addresses]
    try:
        for index, entry in enumerate(feed):
            client = clients[index % len(clients)]
            rest = [e.uuid for e in client.iter_events(after_cursor=entry.cursor, page_size=1000)]
            assert rest == [e.uuid for e in feed[index + 1 :]], f"from cursor {index}"
    finally:
        for client in clients:
            client.close()
