"""The least a feed copied out of the history can cost the write path, with no service at all.

``FedFloor`` is group commit's batched floor (bench/floor.py) on a database shaped as the service's,
the feed's indexes included (``FeedStore.ensure``). With ``fed``, after every ``ROUND_EVENTS`` events it
also does the relay's three writes for them (service/feed_relay.py, storage/feed.py), and none of the
relay's reads: the entries inserted into ``feed`` at the next positions, the head moved, their
``feed_pending`` marks cleared. Side by side, the two bound what any relay that copies each entry and
clears its mark can reach: a relay reads too (the pending entries, their jobs), so it can only do worse.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime

from pymongo import WriteConcern

from pipelinejobs_server.service.feed_relay import fed_entry
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.feed import FEED, FEED_META, PENDING, FeedStore, JobFacts, entry_to_document

from .floor import DURABLE, BatchedFloor, Document, FloorJob

# Events per relay round: what the service's relay carried per round at saturation on this machine
# (5-15, docs/performance.md section 9; two of this floor's batches of 8).
ROUND_EVENTS = 16
LINKS = {"lab": ["floor-lab"], "experiment": ["floor-experiment"]}
PIPELINE = "00000000-0000-4000-8000-00000000f10a"


async def _feed_indexes(uri: str, name: str) -> None:
    database = Database(uri, name, timeout_ms=60_000)
    try:
        await FeedStore(database).ensure()
    finally:
        await database.close()


class FedFloor(BatchedFloor):
    def __init__(self, uri: str, threads: int, jobs_per_thread: int, *, fed: bool) -> None:
        super().__init__(uri, threads, jobs_per_thread, tag="_fed" if fed else "_unfed")
        asyncio.run(_feed_indexes(uri, self.database.name))
        self.fed = fed
        self._feed = self.database.get_collection(FEED, write_concern=DURABLE)
        self._meta = self.database.get_collection(FEED_META, write_concern=DURABLE)
        # As the relay clears them: a lost mark only costs a later look, so no journal wait.
        self._marks = self.events.with_options(write_concern=WriteConcern(w=1))
        self._due: list[Document] = []
        self._head = 0

    def round(self, per_thread: int) -> tuple[float, list[float]]:
        started = time.perf_counter()
        _, latencies = super().round(per_thread)
        self._copy()  # the round ends when the feed holds all of it, as the service's rounds do
        return time.perf_counter() - started, latencies

    def _batch(self, batch: list[FloorJob]) -> list[Document]:
        documents = super()._batch(batch)
        if self.fed:
            self._due += documents
            if len(self._due) >= ROUND_EVENTS:
                self._copy()
        return documents

    def _copy(self) -> None:
        if not self._due:
            return
        fed = [self._fed_document(document, self._head + n) for n, document in enumerate(self._due, 1)]
        self._feed.insert_many(fed, ordered=True)
        self._head += len(fed)
        self._meta.update_one({"_id": "head"}, {"$max": {"p": self._head}}, upsert=True)
        self._marks.update_many({"_id": {"$in": [d["_id"] for d in self._due]}}, {"$unset": {PENDING: ""}})
        self._due = []

    @staticmethod
    def _fed_document(document: Document, position: int) -> Document:
        facts = JobFacts(int(document["seq"]), "RUNNING", False, PIPELINE, LINKS)
        entry = fed_entry(document, facts, datetime.now(UTC))
        return entry_to_document(replace(entry, position=position))
