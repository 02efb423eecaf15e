"""ListJobs pages read in slices of the sort key (storage/windows.py, ADR 004): every filter and order
pages exactly as the whole listing sorted would, no page examines more than a few times its rows
(``explain`` of every query a page sends), a sparse filter takes few slices, and jobs outside the
extent are still listed. Against the real embedded database, on listing documents written directly."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from pymongo import MongoClient, monitoring

from pipelinejobs_server.domain.listing import JobFilter, JobOrder, Position, TimeRange
from pipelinejobs_server.storage import listing
from pipelinejobs_server.storage.database import Database
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from pipelinejobs_server.storage.extent import Extents
from pipelinejobs_server.storage.windows import Densities, PageReader

Document = dict[str, Any]
T = TypeVar("T")

JOBS = 3000
BASE = datetime(2026, 3, 1, tzinfo=UTC)
PIPELINES = ("p-0", "p-1", "p-2")
STATES = ("CREATED", "RUNNING", "FINISHED", "FAILED")
LABS = ("UW_BIOFAB", "Ginkgo", "Transcriptic")
PAGE = 50


def _row(i: int, chooser: random.Random) -> Document:
    labs = {chooser.choice(LABS)}
    if i % 17 == 0:
        labs.add(chooser.choice(LABS))  # two labs: listed under both, returned once
    if i in (0, JOBS // 2, JOBS - 1):
        labs.add("Sparse")
    created = BASE + timedelta(seconds=i)
    return {
        "_id": f"{i:05d}-{uuid.UUID(int=chooser.getrandbits(128))}",
        "pipeline_uuid": PIPELINES[i % 3],
        "state": chooser.choice(STATES),
        "links": {
            "lab": sorted(labs),
            "experiment": [f"exp-{chooser.randrange(4)}"],
            "sample": [f"sample-{i}"],
        },
        "created_at": created,
        # Updates in another order than creation, some in the same millisecond (ties on the sort key).
        "updated_at": created + timedelta(seconds=chooser.randrange(5000), milliseconds=i % 2),
        "listed_seq": 1,
    }


@dataclass(frozen=True)
class Listing:
    uri: str
    name: str
    rows: list[Document]


@pytest.fixture(scope="module")
def seeded(embedded: EmbeddedDatabase) -> Iterator[Listing]:
    name = f"test_windows_{uuid.uuid4().hex[:8]}"
    chooser = random.Random(14)
    rows = [_row(i, chooser) for i in range(JOBS)]
    client: MongoClient[Document] = MongoClient(embedded.uri, tz_aware=True)
    try:
        client[name].job_listing.insert_many(rows)
        # The server's start and its upkeep: the indexes, and the extent measured from the listing.
        asyncio.run(_with(embedded.uri, name, started))
        yield Listing(embedded.uri, name, rows)
    finally:
        client.drop_database(name)
        client.close()


async def started(database: Database) -> None:
    """What a server and its upkeep (storage/upkeep.py) leave: every index built, the extent measured."""
    for declared in await database.ensure_indexes():
        await declared.collection.create_indexes([declared.model])
    c = database.collections
    await Extents(c.job_listing_extent, c.job_listing).measure()


async def _with(uri: str, name: str, work: Callable[[Database], Awaitable[T]], **options: Any) -> T:
    database = Database(uri, name, **options)
    try:
        return await work(database)
    finally:
        await database.close()


def _matches(job_filter: JobFilter, row: Document) -> bool:
    links = row["links"]
    return (
        (not job_filter.pipeline_uuid or row["pipeline_uuid"] == job_filter.pipeline_uuid)
        and (not job_filter.states or row["state"] in job_filter.states)
        and all(not values or set(values) & set(links[kind]) for kind, values in job_filter.links.items())
        and all(
            (moments.start is None or row[field] >= moments.start)
            and (moments.end is None or row[field] < moments.end)
            for field, moments in (("created_at", job_filter.created), ("updated_at", job_filter.updated))
        )
    )


def reference(rows: list[Document], job_filter: JobFilter, order: JobOrder) -> list[str]:
    """The whole listing, filtered and sorted in memory: what paging must return, in this order."""
    found = [row for row in rows if _matches(job_filter, row)]
    found.sort(key=lambda row: (row[order.field], row["_id"]), reverse=order.direction < 0)
    return [row["_id"] for row in found]


def read_pages(
    seeded: Listing,
    job_filter: JobFilter,
    order: JobOrder,
    position: Position | None,
    pages: int,
    **options: Any,
) -> tuple[list[list[Document]], int]:
    """Up to ``pages`` pages of PAGE rows from ``position``, each from a fresh reader (as ListJobs reads
    one per call), and how many slices they took."""

    async def work(database: Database) -> tuple[list[list[Document]], int]:
        extents = Extents(database.collections.job_listing_extent, database.collections.job_listing)
        densities = Densities()
        read: list[list[Document]] = []
        slices = 0
        at = position
        for _ in range(pages):
            reader = PageReader(database.collections.job_listing, extents, densities, job_filter, order, at)
            page = await reader.take(PAGE)
            slices += reader.slices
            if not page:
                break
            read.append(page)
            at = Position(page[-1][order.field], page[-1]["_id"])
        return read, slices

    return asyncio.run(_with(seeded.uri, seeded.name, work, **options))


START, END = BASE + timedelta(seconds=700), BASE + timedelta(seconds=2100)
FILTERS = {
    "none": JobFilter(),
    "pipeline": JobFilter(pipeline_uuid="p-1"),
    "states": JobFilter(states=("RUNNING", "FAILED")),
    "lab": JobFilter(links={"lab": ("Ginkgo",)}),
    "two labs": JobFilter(links={"lab": ("Ginkgo", "UW_BIOFAB")}),
    "sparse lab": JobFilter(links={"lab": ("Sparse",)}),
    "experiment": JobFilter(links={"experiment": ("exp-2",)}),
    "sample": JobFilter(links={"sample": ("sample-7", "sample-2998")}),
    "pipeline + state": JobFilter(pipeline_uuid="p-2", states=("CREATED",)),
    "lab + created range": JobFilter(links={"lab": ("Transcriptic",)}, created=TimeRange(START, END)),
    "created range": JobFilter(created=TimeRange(START, END)),
    "updated range": JobFilter(updated=TimeRange(START, END)),
    "no match": JobFilter(links={"lab": ("nobody",)}),
}
ORDERS = list(JobOrder)


@pytest.mark.parametrize("order", ORDERS, ids=[order.name for order in ORDERS])
@pytest.mark.parametrize("name", list(FILTERS))
def test_paging_returns_the_whole_listing_in_order_once(seeded: Listing, name: str, order: JobOrder) -> None:
    job_filter = FILTERS[name]
    pages, _ = read_pages(seeded, job_filter, order, None, pages=JOBS // PAGE + 2)
    assert all(len(page) == PAGE for page in pages[:-1])
    assert [row["_id"] for page in pages for row in page] == reference(seeded.rows, job_filter, order)


def test_a_deep_position_continues_exactly_after_it(seeded: Listing) -> None:
    order = JobOrder.UPDATE_TIME_ASC
    expected = reference(seeded.rows, JobFilter(), order)
    by_id = {row["_id"]: row for row in seeded.rows}
    last = by_id[expected[1234]]
    pages, _ = read_pages(seeded, JobFilter(), order, Position(last["updated_at"], last["_id"]), pages=2)
    assert [row["_id"] for page in pages for row in page] == expected[1235 : 1235 + 2 * PAGE]


class Finds(monitoring.CommandListener):
    """Every find sent to the listing, as sent."""

    def __init__(self) -> None:
        self.sent: list[Document] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.command_name == "find" and event.command.get("find") == "job_listing":
            self.sent.append(dict(event.command))

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


def examined(seeded: Listing, finds: list[Document]) -> tuple[int, list[str]]:
    """The index keys the database examines for these finds (``explain``, ``executionStats``) and each
    one's access path."""
    client: MongoClient[Document] = MongoClient(seeded.uri, tz_aware=True)
    try:
        keys, plans = 0, []
        for find in finds:
            command = {key: find[key] for key in ("find", "filter", "sort", "limit") if key in find}
            plan = client[seeded.name].command("explain", command, verbosity="executionStats")
            keys += plan["executionStats"]["totalKeysExamined"]
            plans.append("COLLSCAN" if "COLLSCAN" in repr(plan["queryPlanner"]) else "IXSCAN")
        return keys, plans
    finally:
        client.close()


EXAMINED_PER_ROW = 6  # a small multiple: the slices' margin, and a driver value's stream read ahead


def driver_only(job_filter: JobFilter, order: JobOrder) -> JobFilter:
    """What the slices' index bounds select: the driving filter and the sort field's own range."""
    driver = listing.driver_for(job_filter)
    values = driver.values
    if driver.field == "pipeline_uuid":
        driving = JobFilter(pipeline_uuid=values[0])
    elif driver.field == "state":
        driving = JobFilter(states=values)
    elif driver.field is not None:
        driving = JobFilter(links={driver.field.removeprefix("links."): values})
    else:
        driving = JobFilter()
    if order.field == "created_at":
        return replace(driving, created=job_filter.created)
    return replace(driving, updated=job_filter.updated)


def spanned(seeded: Listing, job_filter: JobFilter, order: JobOrder, page: list[Document], start: int) -> int:
    """How many rows the driving index holds from the page's position to its last row: what a page must
    examine at least when the rest of its filter is checked on the rows."""
    if not page:
        return 0
    indexed = reference(seeded.rows, driver_only(job_filter, order), order)
    last = indexed.index(page[-1]["_id"])
    first = 0 if start == 0 else indexed.index(reference(seeded.rows, job_filter, order)[start - 1]) + 1
    return last - first + 1


@pytest.mark.parametrize("order", ORDERS, ids=[order.name for order in ORDERS])
@pytest.mark.parametrize("name", [name for name in FILTERS if name != "no match"])
@pytest.mark.parametrize("deep", [False, True], ids=["first-page", "page-10"])
def test_no_page_examines_more_than_a_small_multiple_of_its_rows(
    seeded: Listing, name: str, order: JobOrder, deep: bool
) -> None:
    """``explain`` of every find a page sends: the keys examined stay within a small multiple of the
    page, or, where part of the filter is checked on the rows (pipeline and state; a range on the other
    time), of the rows the driving index holds across the page. Never the whole of what matches."""
    job_filter = FILTERS[name]
    expected = reference(seeded.rows, job_filter, order)
    position, start = None, 0
    if deep and len(expected) > 10 * PAGE:
        start = 10 * PAGE
        last = next(row for row in seeded.rows if row["_id"] == expected[start - 1])
        position = Position(last[order.field], last["_id"])
    finds = Finds()
    pages, _ = read_pages(seeded, job_filter, order, position, pages=1, listeners=[finds])
    page = pages[0] if pages else []
    assert [row["_id"] for row in page] == expected[start : start + PAGE]
    keys, plans = examined(seeded, finds.sent)
    assert "COLLSCAN" not in plans
    least = max(spanned(seeded, job_filter, order, page, start), PAGE)
    assert keys <= EXAMINED_PER_ROW * least, (keys, least, len(finds.sent))


def test_a_sparse_filter_takes_few_slices_to_the_end(seeded: Listing) -> None:
    for order in ORDERS:
        pages, slices = read_pages(seeded, FILTERS["sparse lab"], order, None, pages=2)
        assert len(pages[0]) == 3
        # Growing across the empty stretches: logarithmic in the listing's span, not linear.
        assert slices <= 10, (order, slices)


def test_jobs_outside_the_extent_are_listed(embedded: EmbeddedDatabase) -> None:
    """The extent is a hint: a job older or newer than it (a clock ahead, a writer that did not widen
    it) is still in the first page of its end, newest first and oldest first."""
    name = f"test_windows_{uuid.uuid4().hex[:8]}"
    chooser = random.Random(7)
    rows = [_row(i, chooser) for i in range(200)]
    client: MongoClient[Document] = MongoClient(embedded.uri, tz_aware=True)
    try:
        client[name].job_listing.insert_many(rows)
        asyncio.run(_with(embedded.uri, name, started))
        ahead, behind = dict(rows[0], _id="ahead"), dict(rows[0], _id="behind")
        for row, shift in ((ahead, timedelta(days=30)), (behind, timedelta(days=-30))):
            row["created_at"] = row["updated_at"] = rows[-1]["created_at"] + shift
        client[name].job_listing.insert_many([ahead, behind])
        listed = Listing(embedded.uri, name, [*rows, ahead, behind])
        for order in ORDERS:
            pages, _ = read_pages(listed, JobFilter(), order, None, pages=10)
            assert [row["_id"] for page in pages for row in page] == reference(
                listed.rows, JobFilter(), order
            )
    finally:
        client.drop_database(name)
        client.close()


def test_without_an_extent_a_page_is_still_right(seeded: Listing) -> None:
    """A database whose extent was never measured (start-up left it for later): slower, never wrong."""

    async def work(database: Database) -> list[list[Document]]:
        listing_rows = database.collections.job_listing
        extents = Extents(database.client[seeded.name]["no_extent_here"], listing_rows)
        read = []
        # The first page, and the last: fewer rows than a page, so the walk must find the end.
        for position in (None, Position(seeded.rows[20]["created_at"], seeded.rows[20]["_id"])):
            reader = PageReader(
                listing_rows, extents, Densities(), JobFilter(), JobOrder.CREATE_TIME_DESC, position
            )
            read.append(await asyncio.wait_for(reader.take(PAGE), 60))
        return read

    first, last = asyncio.run(_with(seeded.uri, seeded.name, work))
    expected = reference(seeded.rows, JobFilter(), JobOrder.CREATE_TIME_DESC)
    assert [row["_id"] for row in first] == expected[:PAGE]
    assert [row["_id"] for row in last] == expected[JOBS - 20 :]
