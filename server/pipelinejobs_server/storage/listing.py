"""ListJobs as MongoDB queries: the listing's indexes, which filter drives a page, and the slices it reads.

A page is read in slices of the sort key (storage/windows.py, ADR 004): ``{driver: value, sort_field:
[lo, hi]}``, one equality and one range, which every server serves from the ``(driver, sort_field, _id)``
index by its bounds, and which SecantusDB serves *only* that way (a second operator clause, an ``$in``
together with a range, or a ``hint`` make it read the whole index or the collection; measured). So the
query carries the driver and the window, nothing else; the rest of the filter is checked on the rows
(``residual``), as are the rows that tie with the page token's position (``is_after``). Cancelled jobs,
which exist only for the moment a cancel takes, are skipped when their records are read.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel

from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position, TimeRange

SORT_FIELDS = ("created_at", "updated_at")
# The fields a page can be driven by, most selective first: a sample names a job or two, a pipeline and
# a lab a share of them, a state a quarter. Each has an index per sort field.
DRIVERS = ("links.sample", "pipeline_uuid", "links.lab", "links.experiment", "state")
Document = dict[str, Any]


def listing_indexes() -> list[IndexModel]:
    """The indexes on ``job_listing``: for each sort field, one on it alone and one per driver before it."""
    models = []
    for field in SORT_FIELDS:
        newest = [(field, DESCENDING), ("_id", DESCENDING)]
        models.append(IndexModel(newest))
        models += [IndexModel([(driver, ASCENDING), *newest]) for driver in DRIVERS]
    return models


@dataclass(frozen=True)
class Driver:
    """The indexed field a page's slices are bounded by, and its values: one slice stream per value.

    ``field`` None: the sort field's own index drives (no indexed filter), one stream.
    """

    field: str | None
    values: tuple[str, ...] = ()


def _values(job_filter: JobFilter, field: str) -> tuple[str, ...]:
    if field == "pipeline_uuid":
        return (job_filter.pipeline_uuid,) if job_filter.pipeline_uuid else ()
    if field == "state":
        return tuple(job_filter.states)
    return tuple(dict.fromkeys(job_filter.links.get(field.removeprefix("links."), ())))


def driver_for(job_filter: JobFilter) -> Driver:
    """The most selective indexed filter of ``job_filter`` (DRIVERS' order), or the sort field's index."""
    for field in DRIVERS:
        values = _values(job_filter, field)
        if values:
            return Driver(field, values)
    return Driver(None)


def _within(moments: TimeRange, value: datetime) -> bool:
    return (moments.start is None or value >= moments.start) and (moments.end is None or value < moments.end)


def _linked(kind: str, wanted: frozenset[str]) -> Callable[[Document], bool]:
    return lambda row: not wanted.isdisjoint(row.get("links", {}).get(kind, ()))


def _timed(field: str, moments: TimeRange) -> Callable[[Document], bool]:
    return lambda row: _within(moments, row[field])


def residual(job_filter: JobFilter, driver: Driver, order: JobOrder) -> Callable[[Document], bool]:
    """Whether a listing row the slice returned matches the rest of the filter (all of it but the driver
    and the sort field's range, which the slice's bounds apply)."""
    checks: list[Callable[[Document], bool]] = []
    if job_filter.pipeline_uuid and driver.field != "pipeline_uuid":
        checks.append(lambda row: row.get("pipeline_uuid") == job_filter.pipeline_uuid)
    if job_filter.states and driver.field != "state":
        states = frozenset(job_filter.states)
        checks.append(lambda row: row.get("state") in states)
    for kind, values in job_filter.links.items():
        if values and driver.field != f"links.{kind}":
            checks.append(_linked(kind, frozenset(values)))
    for field, moments in (("created_at", job_filter.created), ("updated_at", job_filter.updated)):
        if field != order.field and (moments.start is not None or moments.end is not None):
            checks.append(_timed(field, moments))
    return lambda row: all(check(row) for check in checks)


_MILLISECOND = timedelta(milliseconds=1)


def _lower(bounds: dict[str, datetime]) -> dict[str, datetime]:
    """The bounds with ``$gte v`` as ``$gt`` the millisecond before ``v``, the same range for times kept
    to the millisecond (BSON's; the driver truncates finer ones). SecantusDB 0.7.0b3 drops the rows equal
    to a ``$gte`` bound on the descending sort field of a ``(driver, sort field, _id)`` index (measured:
    two of 951 rows of a pipeline missing, both tied at the bound); ``$gt`` is served right."""
    if "$gte" not in bounds:
        return bounds
    rest = {op: value for op, value in bounds.items() if op != "$gte"}
    value = bounds["$gte"]
    floor = value.replace(microsecond=value.microsecond // 1000 * 1000)
    return {**rest, "$gt": floor - _MILLISECOND}


def slice_query(
    driver: Driver, value: str | None, order: JobOrder, bounds: dict[str, datetime]
) -> dict[str, Any]:
    """One slice: the driver's value (if any) and a range on the sort field (``$gte``/``$gt``/``$lte``/
    ``$lt``; no bounds at all for a slice open at both ends)."""
    query: dict[str, Any] = {} if driver.field is None else {driver.field: value}
    if bounds:
        query[order.field] = _lower(bounds)
    return query


def is_after(order: JobOrder, position: Position | None, document: Document) -> bool:
    """Whether a row the range bound let through lies strictly after ``position``."""
    if position is None:
        return True
    value: datetime = document[order.field]
    if value != position.value:
        return True
    uuid: str = document["_id"]
    return uuid < position.uuid if order.direction < 0 else uuid > position.uuid


def sort(order: JobOrder) -> list[tuple[str, int]]:
    return [(order.field, order.direction), ("_id", order.direction)]


def sort_key(order: JobOrder, document: Document) -> tuple[datetime, str]:
    return document[order.field], document["_id"]
