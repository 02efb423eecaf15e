"""The extent of the listing's sort keys: the oldest and the newest creation and update time of any job
(``job_listing_extent``: one small document, ADR 004).

A page is read in slices of its sort key (storage/windows.py). Where a slice has no bound of its own (the
first page newest-first, or the last slice of a listing) it needs to know where the jobs begin and end:
stepping there from "now" or from 1970 would cross every empty stretch in between, and the first slice
past a long one would hold as many jobs as the stretch is long. No query finds the newest key cheaply on
the embedded database (a sort with a limit still reads every matching key), so the extent is kept.

It is a hint, never a bound: the outermost slices are open-ended, so a job outside the extent (a clock
that ran ahead, a writer that did not widen it) is still listed; a stale extent only costs time. Writers
widen it with ``$min``/``$max`` (commutative, so replicas never conflict), at most once per
``listed.GRANULARITY`` of growth per process: its newest is a second behind at worst, which costs the
first slice one second's jobs. Deleted jobs leave it wider than the jobs, which costs empty slices.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from .listed import GRANULARITY  # the listing's own update times lag as much
from .listing import SORT_FIELDS

EXTENT_ID = "sort_keys"
Document = dict[str, Any]


@dataclass(frozen=True)
class Extent:
    """The oldest and newest value of one sort field; both None for a listing without jobs."""

    oldest: datetime | None = None
    newest: datetime | None = None

    def widened(self, values: Iterable[datetime]) -> Extent:
        found = list(values)
        if not found:
            return self
        low, high = min(found), max(found)
        return Extent(
            low if self.oldest is None else min(self.oldest, low),
            high if self.newest is None else max(self.newest, high),
        )


def _of(document: Document | None, field: str) -> Extent:
    found = (document or {}).get(field) or {}
    return Extent(found.get("oldest"), found.get("newest"))


class Extents:
    """The extent documents: read for a page, widened by the listing's writers."""

    def __init__(self, extents: AsyncCollection[Document], listing: AsyncCollection[Document]) -> None:
        self._extents = extents
        self._listing = listing
        # What this process last wrote (or read) per field: it writes again only past it.
        self._known: dict[str, Extent] = {}
        self._read_at: float | None = None

    async def of(self, field: str) -> Extent:
        """The extent as the database holds it, read at most once per ``GRANULARITY`` (it is a hint:
        a second's staleness costs the first slice a second's jobs, as the writers' own throttle does)."""
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= GRANULARITY.total_seconds():
            document = await self._extents.find_one({"_id": EXTENT_ID})
            for name in SORT_FIELDS:
                stored = _of(document, name)
                self._known[name] = self._known.get(name, Extent()).widened(
                    value for value in (stored.oldest, stored.newest) if value
                )
            self._read_at = now
        return self._known.get(field, Extent())

    async def widen(self, rows: Iterable[Document]) -> None:
        """Widen the extents to take in these listing rows (as written by JobStore's listing writes):
        one write for both fields, only when one of them is due."""
        rows = list(rows)
        wanted = {
            field: self._known.get(field, Extent()).widened(
                row[field] for row in rows if row.get(field) is not None
            )
            for field in SORT_FIELDS
        }
        if not any(_due(self._known.get(field, Extent()), extent) for field, extent in wanted.items()):
            return
        await self._write(wanted)
        self._known.update(wanted)

    async def _write(self, extents: dict[str, Extent]) -> None:
        update: Document = {"$min": {}, "$max": {}}
        for field, extent in extents.items():
            if extent.oldest is not None:
                update["$min"][f"{field}.oldest"] = extent.oldest
            if extent.newest is not None:
                update["$max"][f"{field}.newest"] = extent.newest
        update = {op: fields for op, fields in update.items() if fields}
        if update:
            await self._extents.update_one({"_id": EXTENT_ID}, update, upsert=True)

    async def measure(self) -> None:
        """Compute the extents from the listing itself: once, for a database listed before they were
        kept. It reads the whole listing (an aggregate), so only the upkeep calls it, after start-up."""
        if await self._extents.find_one({"_id": EXTENT_ID}) is not None:
            return
        groups: Document = {"_id": None}
        for field in SORT_FIELDS:
            groups[f"{field}_oldest"] = {"$min": f"${field}"}
            groups[f"{field}_newest"] = {"$max": f"${field}"}
        async for found in await self._listing.aggregate([{"$group": groups}]):
            await self._write(
                {field: Extent(found[f"{field}_oldest"], found[f"{field}_newest"]) for field in SORT_FIELDS}
            )


def _due(known: Extent, wanted: Extent) -> bool:
    """Whether ``wanted`` widens ``known`` enough to be written: any older job, or a newer one by the
    granularity (each slice open at its end takes in what is newer than the extent's newest)."""
    if wanted.oldest is None or wanted.newest is None:
        return False  # nothing to take in
    if known.oldest is None or known.newest is None:
        return True
    return wanted.oldest < known.oldest or wanted.newest - known.newest >= GRANULARITY
