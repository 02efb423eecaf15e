"""Connecting to MongoDB, the collections and indexes, and turning driver failures into domain errors."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import pymongo
from bson.errors import InvalidDocument
from pymongo import ASCENDING, AsyncMongoClient, IndexModel, WriteConcern, monitoring
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError, PyMongoError

from pipelinejobs_server.domain.errors import DatabaseUnavailable, InvalidArgument

from . import listing

Document = dict[str, Any]

# Every write that changes state waits for the journal: a SIGKILL of the database loses writes
# acknowledged with w=1 alone (measured on the embedded database). "majority" keeps them through a replica-set
# failover in production; on a single node it is the node itself.
DURABLE = WriteConcern(w="majority", j=True)

# The collections, by name: the service's stores and the doctor's scan read the same ones. The history
# keeps its first name, job_events: renaming a collection would be a migration for every installation.
PIPELINES, JOBS, HISTORY, REJECTED = "pipelines", "jobs", "job_events", "rejected_events"
# What ListJobs reads: one small document per job carrying the listing indexes (storage/listed.py, ADR 013).
LISTING = "job_listing"
# The extent of the listing's sort keys (storage/extent.py): where a page's outermost slices begin.
LISTING_EXTENT = "job_listing_extent"
# Jobs per state, as counters that every state change moves in its own transaction (storage/counts.py).
COUNTS = "job_counts"
# What each state change and cancel does to the counts, written on the write path and folded into
# job_counts in the background (storage/counts.py, storage/folding.py).
COUNT_CHANGES = "job_count_changes"
# A folded change is kept a day, so that a roll-forward racing the entry's writer finds it there
# (a duplicate, ignored) rather than writing it a second time.
FOLDED_KEPT_S = 24 * 3600
# How many listing documents the first start after ADR 013 writes per round trip for existing jobs.
BACKFILL_BATCH = 1000

# How long closing the client may spend on its goodbyes to the database (endSessions, killCursors).
# They are courtesies, the server expires both by itself; but on a database that stopped answering
# close() waited for them for the socket timeout: 10 s (measured), longer than a whole stop's grace.
CLOSE_TIMEOUT_S = 0.5

P = ParamSpec("P")
R = TypeVar("R")


def unavailable(error: PyMongoError, *, detail: bool = False) -> DatabaseUnavailable:
    """The domain error for a driver failure. Only operator tools add the driver's message (``detail``):
    the service's callers get the failure's kind, never a host name or a query from the driver's text."""
    message = f"database unavailable: {type(error).__name__}"
    return DatabaseUnavailable(f"{message}: {error}" if detail else message)


def unencodable(error: Exception) -> InvalidArgument:
    """The domain error for a value the driver could not encode: an integer past 64 bits, a time outside
    BSON's range, a query or document over the database's size limit (``DocumentTooLarge`` is an
    ``InvalidDocument``). The service checks what it can first; whatever gets through came from a request,
    so it is the caller's error, and the driver's text (which may quote the value) stays out of it."""
    return InvalidArgument(
        f"a value of the request cannot be stored or queried: {type(error).__name__}", field="request"
    )


def translate_errors(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Turn any driver failure except a duplicate key into DatabaseUnavailable, and values the driver
    cannot encode into InvalidArgument.

    Duplicate keys are how the store detects races (seq and idempotency indexes); callers handle them.
    """

    @functools.wraps(function)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await function(*args, **kwargs)
        except DuplicateKeyError:
            raise
        except PyMongoError as error:
            raise unavailable(error) from error
        except (OverflowError, InvalidDocument) as error:
            raise unencodable(error) from error

    return wrapper


@contextlib.contextmanager
def translated(*, detail: bool = False) -> Iterator[None]:
    """``translate_errors`` for blocking code (the doctor's scan), as a ``with`` block."""
    try:
        yield
    except PyMongoError as error:
        raise unavailable(error, detail=detail) from error


@dataclass(frozen=True)
class Declared:
    """One index the service declares on one collection; ``required`` when correctness needs it."""

    collection: AsyncCollection[Document]
    model: IndexModel
    required: bool

    @property
    def name(self) -> str:
        return str(self.model.document["name"])

    def __str__(self) -> str:
        return f"{self.collection.name}.{self.name}"


@dataclass(frozen=True)
class Collections:
    pipelines: AsyncCollection[Document]
    jobs: AsyncCollection[Document]
    job_events: AsyncCollection[Document]
    rejected_events: AsyncCollection[Document]
    job_listing: AsyncCollection[Document]
    job_listing_extent: AsyncCollection[Document]
    job_counts: AsyncCollection[Document]
    job_count_changes: AsyncCollection[Document]


class Database:
    """One client and the service's collections, all with the durable write concern."""

    def __init__(
        self,
        uri: str,
        name: str,
        *,
        timeout_ms: int = 2000,
        listeners: Sequence[monitoring.CommandListener] = (),
    ) -> None:
        """``listeners``: the driver's command monitoring (tests count what a page asks the database)."""
        # Short timeouts so that a request fails fast with UNAVAILABLE while the database is down
        # (docs/operations.md, "When the database is down") instead of hanging for pymongo's default 30 s.
        self.client: AsyncMongoClient[Document] = AsyncMongoClient(
            uri,
            serverSelectionTimeoutMS=timeout_ms,
            connectTimeoutMS=timeout_ms,
            # Bounds a read or write on a database that accepts connections but does not answer. Not
            # timeoutMS: that one replaces serverSelectionTimeoutMS and would make an outage wait for it.
            socketTimeoutMS=max(timeout_ms * 5, 10_000),
            tz_aware=True,
            uuidRepresentation="standard",
            event_listeners=list(listeners),
        )
        database: AsyncDatabase[Document] = self.client.get_database(name, write_concern=DURABLE)
        self.database = database
        self.collections = Collections(
            pipelines=database[PIPELINES],
            jobs=database[JOBS],
            job_events=database[HISTORY],
            rejected_events=database[REJECTED],
            job_listing=database[LISTING],
            job_listing_extent=database[LISTING_EXTENT],
            job_counts=database[COUNTS],
            job_count_changes=database[COUNT_CHANGES],
        )
        self._change_streams: bool | None = None

    def declared_indexes(self) -> list[Declared]:
        """Every index the service uses. ``required`` ones guard correctness (uniqueness) and exist
        before a server serves; the others only make reads fast and may be built after it started
        (storage/upkeep.py), so that a big database starts at once (ADR 014)."""
        c = self.collections
        # ListJobs: per sort field, its own index and one per filter that can drive a page's slices
        # (storage/listing.py, ADR 004). They are on the listing, not on the record every event
        # rewrites (ADR 013): the record keeps only _id.
        return [
            Declared(c.pipelines, IndexModel([("created_at", ASCENDING), ("_id", ASCENDING)]), False),
            *(Declared(c.job_listing, model, False) for model in listing.listing_indexes()),
            # The log's order and its guard against two writers taking the same seq.
            Declared(
                c.job_events,
                IndexModel([("job_uuid", ASCENDING), ("seq", ASCENDING)], unique=True, name="job_seq"),
                True,
            ),
            # Idempotency keys are unique per job; events without a key are not indexed here.
            Declared(
                c.job_events,
                IndexModel(
                    [("job_uuid", ASCENDING), ("idempotency_key", ASCENDING)],
                    unique=True,
                    name="job_idempotency_key",
                    partialFilterExpression={"idempotency_key": {"$type": "string"}},
                ),
                True,
            ),
            # CountJobs reads one scope's counters (storage/counts.py).
            Declared(c.job_counts, IndexModel([("scope", ASCENDING), ("state", ASCENDING)]), False),
            # CountJobs and the folder read the pending changes (of a pipeline).
            Declared(
                c.job_count_changes,
                IndexModel(
                    [("pending", ASCENDING), ("p", ASCENDING)],
                    name="pending_changes",
                    partialFilterExpression={"pending": True},
                ),
                False,
            ),
            Declared(
                c.job_count_changes,
                IndexModel(
                    [("folded_at", ASCENDING)], name="folded_expiry", expireAfterSeconds=FOLDED_KEPT_S
                ),
                False,
            ),
            Declared(
                c.rejected_events,
                IndexModel([("job_uuid", ASCENDING), ("timestamp", ASCENDING), ("_id", ASCENDING)]),
                False,
            ),
            Declared(c.rejected_events, IndexModel([("timestamp", ASCENDING), ("_id", ASCENDING)]), False),
        ]

    @translate_errors
    async def missing_indexes(self) -> list[Declared]:
        """The declared indexes the database does not have yet, in declared order."""
        existing: dict[str, set[str]] = {}
        missing = []
        for declared in self.declared_indexes():
            name = declared.collection.name
            if name not in existing:
                existing[name] = set(await declared.collection.index_information())
            if declared.name not in existing[name]:
                missing.append(declared)
        return missing

    @translate_errors
    async def ensure_indexes(self) -> list[Declared]:
        """Build, before serving, the required indexes and those on empty collections (instant); return
        the rest, which the upkeep builds in the background (a build over a big collection takes
        minutes on the embedded database, longer than any start-up should wait)."""
        # Existing jobs are listed first: building the indexes over the listings afterwards is faster
        # than inserting every listing into them.
        await self._move_listing_off_the_records()
        later = []
        for declared in await self.missing_indexes():
            if declared.required or await declared.collection.estimated_document_count() == 0:
                await declared.collection.create_indexes([declared.model])
            else:
                later.append(declared)
        return later

    async def _move_listing_off_the_records(self) -> None:
        """A database from before ADR 013: drop the listing indexes from the records and list every job
        that has no listing yet (once; later starts find the counts equal and skip it)."""
        c = self.collections
        # The records' collection exists from the first start, as it did while it carried the indexes
        # (the doctor takes a database without one for a wrong name).
        if JOBS not in await self.database.list_collection_names():
            with contextlib.suppress(pymongo.errors.CollectionInvalid, pymongo.errors.OperationFailure):
                await self.database.create_collection(JOBS)  # another replica may create it first
        for name in await c.jobs.index_information():
            if name != "_id_":
                await c.jobs.drop_index(name)
        if await c.job_listing.estimated_document_count() >= await c.jobs.estimated_document_count():
            return
        fields = ("pipeline_uuid", "state", "links", "created_at", "updated_at")
        last = ""
        while True:
            page = (
                await c.jobs.find({"_id": {"$gt": last}}, [*fields, "seq"])
                .sort("_id", ASCENDING)
                .to_list(BACKFILL_BATCH)
            )
            if not page:
                return
            # As storage/listed.py's listing_document makes them (that module imports this one).
            documents = [
                {"_id": job["_id"], **{f: job.get(f) for f in fields}, "listed_seq": job.get("seq", 0)}
                for job in page
            ]
            try:
                await c.job_listing.insert_many(documents, ordered=False)
            except pymongo.errors.BulkWriteError as error:  # jobs listed already (by an event meanwhile)
                if any(e.get("code") != DUPLICATE_KEY for e in error.details.get("writeErrors", [])):
                    raise
            last = page[-1]["_id"]

    @translate_errors
    async def has_change_streams(self) -> bool:
        """Whether the server keeps the log of its writes that change streams follow: a replica set (the
        embedded default is one) or a sharded cluster does, a standalone server does not. Asked once."""
        if self._change_streams is None:
            hello = await self.client.admin.command("hello")
            self._change_streams = "setName" in hello or hello.get("msg") == "isdbgrid"
        return self._change_streams

    @translate_errors
    async def ping(self) -> None:
        await self.client.admin.command("ping")

    async def close(self, timeout_s: float = CLOSE_TIMEOUT_S) -> None:
        """Close the client, giving up on the database's answers after ``timeout_s``.

        Operations still in flight are not interrupted by this (measured: a find on a stalled database
        went on for its socket timeout after close() returned); their tasks must be ended by their owners.
        """
        with pymongo.timeout(timeout_s):
            await self.client.close()


DUPLICATE_KEY = 11000  # the server's code for a write refused by a unique index


def duplicate_index(error: DuplicateKeyError) -> str:
    """The name of the unique index a duplicate-key error came from."""
    return duplicate_index_of(error.details or {}, str(error))


def duplicate_index_of(details: Mapping[str, Any], fallback: str = "") -> str:
    """The unique index named by a duplicate-key error's details (or by one entry of a bulk write's)."""
    pattern = details.get("keyPattern") or {}
    if "seq" in pattern:
        return "job_seq"
    if "idempotency_key" in pattern:
        return "job_idempotency_key"
    message = str(details.get("errmsg", fallback))
    for name in ("job_seq", "job_idempotency_key"):
        if name in message:
            return name
    return "_id"
