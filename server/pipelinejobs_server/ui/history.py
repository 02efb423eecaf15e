"""Which history entries a job page shows: the newest ones, a page at a time, with a link to older ones.

A page holds at most ``PAGE`` entries and about ``DATA_BYTES`` of their data (always one entry at least):
an entry may carry 64 KiB, so a count alone would let a few big ones make a page of many megabytes. The
page of older entries is ``?before=<seq>``: the entries before that seq, as many as fit, the same way.

Entries are read forward from the first one shown: ``ListJobEvents`` when that is the history's start
(most jobs), else ``WatchJob`` from a seq (its pages only go forward from a token, and a token is the
service's to make), stopped at the last entry wanted.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import cast

from starlette.datastructures import QueryParams

from pipelinejobs_client import AsyncJobsClient
from pipelinejobs_client.api.v1 import job_pb2
from pipelinejobs_server.domain.errors import InvalidArgument

PAGE = 50
DATA_BYTES = 1024 * 1024
MAX_SEQ = 2**63 - 1
WATCH_S = 30.0  # reading a page of a history takes well under a second; this only bounds a stuck stream


@dataclass(frozen=True)
class Window:
    """The entries a job page shows, oldest first, and where the older ones start."""

    entries: list[job_pb2.HistoryEvent]
    total: int  # the job's seq: how many entries it has

    @property
    def older(self) -> int | None:
        """The ``before`` of the page of older entries; None when the first entry is shown."""
        return self.entries[0].seq if self.entries and self.entries[0].seq > 1 else None

    @property
    def whole(self) -> bool:
        return len(self.entries) >= self.total


def before(params: QueryParams) -> int | None:
    """The ``before`` parameter: show entries with a smaller seq (None: the newest entries)."""
    raw = params.get("before", "").strip()
    if not raw:
        return None
    if not raw.isdigit() or not 2 <= int(raw) <= MAX_SEQ:
        raise InvalidArgument("before must be the seq of a history entry, 2 or more", field="before")
    return int(raw)


async def window(client: AsyncJobsClient, job: job_pb2.Job, until: int | None) -> Window:
    """The entries before seq ``until`` (all of the newest when None), as many as fit on one page."""
    last = job.seq if until is None else min(until - 1, job.seq)
    first = max(1, last - PAGE + 1)
    entries = await _read(client, job.uuid, first, last) if last >= 1 else []
    # Drop the oldest until the data fits: the page stays one a browser shows without trouble.
    size = sum(entry.data.ByteSize() for entry in entries)
    while len(entries) > 1 and size > DATA_BYTES:
        size -= entries.pop(0).data.ByteSize()
    return Window(entries, job.seq)


async def _read(client: AsyncJobsClient, uuid: str, first: int, last: int) -> list[job_pb2.HistoryEvent]:
    """Entries ``first`` to ``last`` (both included, ``last`` at most the job's seq), in seq order."""
    entries: list[job_pb2.HistoryEvent] = []
    if first == 1:
        token = ""
        while True:
            # The reply may hold fewer than asked (it is cut to the server's message size): go on by token.
            page = await client.list_job_events(uuid, page_size=last - len(entries), page_token=token)
            entries += [entry for entry in page.events if entry.seq <= last]
            token = page.next_page_token
            if not token or len(entries) >= last - first + 1:
                return entries
    # An async generator, typed as an iterator by the client: closed here, so the stream ends now.
    watch = cast(
        AsyncGenerator[job_pb2.HistoryEvent, None],
        client.watch_job(uuid, after_seq=first - 1, timeout=WATCH_S),
    )
    try:
        async for entry in watch:
            entries.append(entry)
            if entry.seq >= last:
                break
    finally:
        await watch.aclose()
    return entries
