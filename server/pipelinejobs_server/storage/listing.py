"""ListJobs as MongoDB queries: filters, order and keyset pages.

The keyset bound is a plain range on the sort field (``created_at <= last``), which every index on
``(…, created_at, _id)`` can serve; the few rows that tie with the last one on the sort value are
skipped by ``is_after`` while reading. An ``$or`` form of the bound, or a ``cancelled != true`` clause,
makes the embedded database's planner fall back to a collection scan (measured), so neither is in the
query: cancelled jobs, which exist only for the moment a cancel takes, are skipped while reading too.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position, TimeRange


def _range(moments: TimeRange) -> dict[str, Any]:
    bounds: dict[str, Any] = {}
    if moments.start is not None:
        bounds["$gte"] = moments.start
    if moments.end is not None:
        bounds["$lt"] = moments.end
    return bounds


def page_query(job_filter: JobFilter, order: JobOrder, position: Position | None) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if job_filter.pipeline_uuid:
        query["pipeline_uuid"] = job_filter.pipeline_uuid
    if job_filter.states:
        query["state"] = {"$in": list(job_filter.states)}
    for kind, values in job_filter.links.items():
        if values:
            query[f"links.{kind}"] = {"$in": list(values)}
    for name, moments in (("created_at", job_filter.created), ("updated_at", job_filter.updated)):
        bounds = _range(moments)
        if bounds:
            query[name] = bounds
    if position is not None:
        bound = "$lte" if order.direction < 0 else "$gte"
        query.setdefault(order.field, {})[bound] = position.value
    return query


def is_after(order: JobOrder, position: Position | None, document: dict[str, Any]) -> bool:
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


_NEWEST = [("created_at", -1), ("_id", -1)]


def index_for(job_filter: JobFilter, order: JobOrder) -> list[tuple[str, int]]:
    """The index a page query should use, most selective filter first.

    The embedded database's planner does not always find these indexes by itself (an ``$in`` together
    with a range on the sort field sends it to a collection scan); naming them keeps every common
    filter on an index, on MongoDB as well. The keys must match database.py's index definitions.
    """
    if job_filter.links.get("sample"):
        return [("links.sample", 1), *_NEWEST]
    if job_filter.pipeline_uuid:
        return [("pipeline_uuid", 1), *_NEWEST]
    if job_filter.links.get("lab"):
        return [("links.lab", 1), *_NEWEST]
    if job_filter.links.get("experiment"):
        return [("links.experiment", 1), *_NEWEST]
    if job_filter.states:
        return [("state", 1), *_NEWEST]
    if order.field == "updated_at":
        return [("updated_at", -1), ("_id", -1)]
    return _NEWEST
