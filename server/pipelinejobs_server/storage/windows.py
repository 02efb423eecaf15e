"""A ListJobs page read in slices of its sort key, so that it costs about the page, not the matching jobs.

SecantusDB never stops an index scan at a query's limit: it reads every index entry within the query's
bounds, then sorts and cuts (ADR 004). A page is therefore read as slices ``{driver: value, sort_field:
[lo, hi]}`` (storage/listing.py) walking from the page's position in its order, each as wide as the
density seen so far says the rest of the page needs; one stream of slices per value of the driver
(``$in`` of several labs or states), merged by the sort key. A slice is read whole (never cut by a
limit), so where it ends is where the stream stands.

- Width: the first slice is as wide as this process last found the driver value dense (``Densities``),
  else ``FIRST_WIDTH``. After a slice, the next is as wide as the rows kept per second so far say the
  rest of the page needs (with a margin), at most ``MAX_GROWTH`` times the last; after an empty one it is
  ``EMPTY_GROWTH`` times wider. Capped so that a slice is expected to hold at most
  ``SLICE_ROWS_PER_ROW`` times the rows still needed (or ``MIN_SLICE_ROWS``) before the residual filter:
  a selective residual (pipeline and a rare state) walks in slices of bounded size instead of one that
  holds a year.
- Ends: a slice with no bound of the position's or the filter's own starts at the extent's newest (or
  oldest, ascending) and is open on that side; the last slice, once the walk reaches the extent's other
  end, is open on that side too (storage/extent.py). So no job is missed for lying outside the extent.
- Sparse filters (a lab with three jobs among a million): the slices grow ``EMPTY_GROWTH``-fold across
  the empty stretches, so reaching the end of a listing takes a number of slices logarithmic in its span.
- Known limit: after a long empty stretch of a driver's history, the first slice past it may be as wide
  as the stretch, and holds that driver's jobs of that span (capped by nothing: they are unknown until
  read).

Plain MongoDB queries (an equality and a range), served by MongoDB from the same indexes.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position

from . import listing
from .extent import Extent, Extents

Document = dict[str, Any]

FIRST_WIDTH_S = 60.0
MIN_WIDTH_S = 0.001  # times are kept to the millisecond
EMPTY_GROWTH = 2.0
MAX_GROWTH = 4.0
MARGIN = 1.25
SLICE_ROWS_PER_ROW = 4
MIN_SLICE_ROWS = 100
KNOWN_DENSITIES = 1024
SLICE_BATCH = 100_000  # rows per reply (the server caps a reply at 16 MiB whatever this says)


class Densities:
    """Rows per second last seen per (sort field, driver field, value): the next page's first width."""

    def __init__(self, size: int = KNOWN_DENSITIES) -> None:
        self._size = size
        self._rates: OrderedDict[tuple[str, str | None, str | None], float] = OrderedDict()

    def get(self, key: tuple[str, str | None, str | None]) -> float | None:
        rate = self._rates.get(key)
        if rate is not None:
            self._rates.move_to_end(key)
        return rate

    def put(self, key: tuple[str, str | None, str | None], rate: float) -> None:
        self._rates[key] = rate
        self._rates.move_to_end(key)
        while len(self._rates) > self._size:
            self._rates.popitem(last=False)


@dataclass
class _Edge:
    """Where a stream stands on its walk: the next slice starts at ``value`` (None: at the extent, open)."""

    value: datetime | None
    inclusive: bool


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


class _Stream:
    """One driver value's rows in the page's order, read a slice at a time."""

    def __init__(
        self,
        listing_rows: AsyncCollection[Document],
        driver: listing.Driver,
        value: str | None,
        order: JobOrder,
        edges: tuple[_Edge, _Edge | None],
        extent: Extent,
        keep: Callable[[Document], bool],
        densities: Densities,
    ) -> None:
        self._rows_of = listing_rows
        self._driver, self._value, self._order = driver, value, order
        self._start, self._stop = edges  # the stop: the filter's own bound on the far side, or None
        self._extent = extent
        self._keep = keep
        self._densities = densities
        self._key = (order.field, driver.field, value)
        self._rate = densities.get(self._key)
        self._width = 0.0
        self._span = 0.0
        self._raw = self._kept = 0
        self.rows: deque[Document] = deque()
        self.done = self._empty_range()
        self.slices = 0

    def _empty_range(self) -> bool:
        if self._extent.oldest is None and self._start.value is None:
            return False  # nothing known: the one slice open at both ends will tell
        start, stop = self._start.value, self._stop.value if self._stop else None
        if start is None or stop is None:
            return False
        return start < stop if self._order.direction < 0 else start > stop

    def _next_width(self, need: int) -> float:
        if self._kept == 0:
            width = self._width * EMPTY_GROWTH
        else:
            width = min(need * MARGIN * self._span / self._kept, self._width * MAX_GROWTH)
        if self._raw:  # at most so many rows before the residual filter, at the density seen
            width = min(width, max(SLICE_ROWS_PER_ROW * need, MIN_SLICE_ROWS) * self._span / self._raw)
        return max(width, MIN_WIDTH_S)

    async def read_slice(self, need: int) -> None:
        """Read the next slice, sized for ``need`` more kept rows, into ``rows``."""
        width = self._next_width(need) if self.slices else self._first_width(need)
        bounds, far, final = self._slice(width)
        cursor = self._rows_of.find(listing.slice_query(self._driver, self._value, self._order, bounds))
        # The whole slice in one reply: the first batch is otherwise 101 rows, and the rest one more trip.
        rows = await cursor.sort(listing.sort(self._order)).batch_size(SLICE_BATCH).to_list(None)
        self.slices += 1
        kept = [row for row in rows if self._keep(row)]
        self.rows.extend(kept)
        self._span += width
        self._raw += len(rows)
        self._kept += len(kept)
        self._width = width
        if self._raw:
            self._densities.put(self._key, self._raw / self._span)
        if final:
            self.done = True
        else:
            self._start = _Edge(far, not _inclusive_far_side(self._order))

    def _first_width(self, need: int) -> float:
        if self._rate:
            return max(need * MARGIN / self._rate, MIN_WIDTH_S)
        return FIRST_WIDTH_S

    def _slice(self, width: float) -> tuple[dict[str, datetime], datetime | None, bool]:
        """The next slice's bounds, the value where it ends, and whether it is the walk's last."""
        descending = self._order.direction < 0
        near_op = (
            ("$lte" if self._start.inclusive else "$lt")
            if descending
            else ("$gte" if self._start.inclusive else "$gt")
        )
        far_op = "$gte" if descending else "$lt"
        bounds: dict[str, datetime] = {}
        near = self._start.value
        if near is not None:
            bounds[near_op] = near
        anchor = near if near is not None else (self._extent.newest if descending else self._extent.oldest)
        if anchor is None:  # no jobs known at all: one slice open at both ends
            return bounds, None, True
        if self._stop is not None and self._stop.value is not None:
            stop = self._stop.value
            if (_seconds(anchor, stop) if descending else _seconds(stop, anchor)) <= width:
                bounds["$gte" if descending else "$lt"] = stop
                return bounds, None, True
        end = self._extent.oldest if descending else self._extent.newest
        # Open on the far side: whatever lies beyond the extent too. Without an extent (not measured
        # yet) the one slice from here to the end is the only safe one: slower, never wrong.
        if end is None or (_seconds(anchor, end) if descending else _seconds(end, anchor)) <= width:
            return bounds, None, True
        step = timedelta(seconds=width)
        far = anchor - step if descending else anchor + step
        bounds[far_op] = far
        return bounds, far, False


def _inclusive_far_side(order: JobOrder) -> bool:
    """Whether a slice's far bound includes its value: descending slices are [far, near], so the next
    starts below ``far`` (exclusive); ascending ones are [near, far), so the next starts at ``far``."""
    return order.direction < 0


def _edges(job_filter: JobFilter, order: JobOrder, position: Position | None) -> tuple[_Edge, _Edge | None]:
    """Where the walk starts (the position, or the filter's own bound on that side) and stops."""
    moments = job_filter.created if order.field == "created_at" else job_filter.updated
    if order.direction < 0:
        start = _Edge(moments.end, False) if moments.end is not None else _Edge(None, True)
        if position is not None and (start.value is None or position.value < start.value):
            start = _Edge(position.value, True)
        stop = _Edge(moments.start, True) if moments.start is not None else None
    else:
        start = _Edge(moments.start, True) if moments.start is not None else _Edge(None, True)
        if position is not None and (start.value is None or position.value >= start.value):
            start = _Edge(position.value, True)
        stop = _Edge(moments.end, False) if moments.end is not None else None
    return start, stop


class PageReader:
    """The rows of one ListJobs page and those after it, in order: ``take`` as many as needed."""

    def __init__(
        self,
        listing_rows: AsyncCollection[Document],
        extents: Extents,
        densities: Densities,
        job_filter: JobFilter,
        order: JobOrder,
        position: Position | None,
    ) -> None:
        self._rows_of = listing_rows
        self._extents = extents
        self._densities = densities
        self._filter, self._order, self._position = job_filter, order, position
        self._streams: list[_Stream] | None = None
        self._emitted: set[str] = set()

    async def _open(self) -> list[_Stream]:
        driver = listing.driver_for(self._filter)
        keep = listing.residual(self._filter, driver, self._order)
        position, order = self._position, self._order

        def wanted(row: Document) -> bool:
            return listing.is_after(order, position, row) and keep(row)

        extent = await self._extents.of(self._order.field)
        values: tuple[str | None, ...] = driver.values if driver.field is not None else (None,)
        return [
            _Stream(
                self._rows_of,
                driver,
                value,
                self._order,
                _edges(self._filter, self._order, self._position),
                extent,
                wanted,
                self._densities,
            )
            for value in values
        ]

    async def take(self, count: int) -> list[Document]:
        """The next ``count`` rows (fewer at the end of the listing)."""
        if self._streams is None:
            self._streams = await self._open()
        streams = self._streams
        descending = self._order.direction < 0
        out: list[Document] = []
        while len(out) < count:
            # Each stream is asked for its share of what is missing: most pages draw on all of them,
            # and one that runs dry early reads another slice then.
            open_streams = sum(1 for stream in streams if not stream.done) or 1
            share = -(-(count - len(out)) // open_streams)
            for stream in streams:
                while not stream.rows and not stream.done:
                    await stream.read_slice(share)
            live = [stream for stream in streams if stream.rows]
            if not live:
                break
            best = self._next_of(live, descending)
            row = best.rows.popleft()
            if row["_id"] in self._emitted:  # listed under two of the driver's values (two labs)
                continue
            self._emitted.add(row["_id"])
            out.append(row)
        return out

    def _next_of(self, live: list[_Stream], descending: bool) -> _Stream:
        """The stream whose head comes first in the page's order."""
        pick = max if descending else min
        return pick(live, key=lambda stream: listing.sort_key(self._order, stream.rows[0]))

    @property
    def slices(self) -> int:
        return sum(stream.slices for stream in self._streams or ())
