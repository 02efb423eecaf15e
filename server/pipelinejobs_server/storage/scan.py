"""A read-only scan of a whole database, page by page, for ``pipelinejobs doctor``.

The doctor is an operator tool over the database (like ``mongodump``), not a client of the service: it
reads the collections directly with a blocking pymongo client and never writes. Every read is a keyset
page over an index (``_id`` for jobs, the unique ``(job_uuid, seq)`` index for a job's history), so memory
stays bounded by one page however large the database, no cursor stays open while the caller works, and
the database never has to sort a whole collection in memory.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConfigurationError

from . import counts
from .database import COUNT_CHANGES, COUNTS, HISTORY, JOBS, Document, translated

PAGE = 500
# What the doctor needs of a record. Job parameters (up to 256 KiB each) and token hashes are left out,
# so that a page of records stays small.
RECORD_FIELDS = {"data_json": 0, "tokens": 0}


class DatabaseScan:
    """The jobs and their histories, page by page. Use as a context manager, or call ``close()``."""

    def __init__(
        self,
        uri: str,
        database: str,
        *,
        timeout_ms: int = 5000,
        page: int = PAGE,
        password: str | None = None,
    ) -> None:
        """``password``: for the user the URI names, when the URI leaves it out (as ``up`` prints it).

        Raises ValueError for a URI the driver cannot use (a user without a password, above all).
        """
        credentials: dict[str, Any] = {} if password is None else {"password": password}
        try:
            self._client: MongoClient[Document] = MongoClient(
                uri,
                serverSelectionTimeoutMS=timeout_ms,
                connectTimeoutMS=timeout_ms,
                tz_aware=True,
                uuidRepresentation="standard",
                appname="pipelinejobs-doctor",
                **credentials,
            )
        except ConfigurationError as error:
            hint = " (--mongodb-password-file gives it)" if "password" in str(error) else ""
            raise ValueError(f"the MongoDB URI cannot be used: {error}{hint}") from None
        self._jobs = self._client[database][JOBS]
        self._events = self._client[database][HISTORY]
        self._counts = self._client[database][COUNTS]
        self._changes = self._client[database][COUNT_CHANGES]
        self._page = page

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> DatabaseScan:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def ping(self) -> None:
        """Fail with DatabaseUnavailable now, rather than half-way through a check."""
        with translated(detail=True):
            self._client.admin.command("ping")

    def has_jobs(self) -> bool:
        """Whether the database has a jobs collection at all: without one, its name is probably wrong."""
        with translated(detail=True):
            return JOBS in self._jobs.database.list_collection_names()

    def records(self) -> Iterator[Document]:
        """Every job record in ``_id`` order. Only string ids: the service never writes another kind."""
        last = ""
        while True:
            with translated(detail=True):
                page = list(
                    self._jobs.find({"_id": {"$gt": last}}, RECORD_FIELDS)
                    .sort("_id", ASCENDING)
                    .limit(self._page)
                )
            yield from page
            if len(page) < self._page:
                return
            last = page[-1]["_id"]

    def record(self, job_uuid: str) -> Document | None:
        with translated(detail=True):
            return self._jobs.find_one({"_id": job_uuid}, RECORD_FIELDS)

    def events(self, job_uuid: str) -> Iterator[Document]:
        """A job's history in seq order, a page at a time (keyset on seq, served by the job_seq index)."""
        # Each page is the closed range of seqs after the last one, read on past it only when short
        # (across a gap, or at the end): an open range costs as much as the rest of the history on
        # SecantusDB (ADR 014). A seq that is not an integer (damage the doctor reports) is followed by
        # open ranges, as before.
        after: Any = 0
        while True:
            with translated(detail=True):
                if isinstance(after, int) and not isinstance(after, bool):
                    page = self._seqs(job_uuid, {"$gt": after, "$lte": after + self._page}, self._page)
                else:
                    page = []
                if len(page) < self._page:
                    last = page[-1].get("seq") if page else after
                    page += self._seqs(
                        job_uuid, {"$gt": last} if page or after else None, self._page - len(page)
                    )
            yield from page
            if len(page) < self._page:
                return
            after = page[-1].get("seq")

    def _seqs(self, job_uuid: str, seqs: Document | None, limit: int) -> list[Document]:
        query: Document = {"job_uuid": job_uuid} if seqs is None else {"job_uuid": job_uuid, "seq": seqs}
        return list(self._events.find(query).sort("seq", ASCENDING).limit(limit))

    def count_events(self, job_uuid: str | None = None) -> int:
        with translated(detail=True):
            return self._events.count_documents({} if job_uuid is None else {"job_uuid": job_uuid})

    def logged_job_uuids(self) -> Iterator[str]:
        """Each distinct ``job_uuid`` of the history once, in order: a keyset walk over the job_seq index."""
        last = ""
        while True:
            with translated(detail=True):
                document = self._events.find_one(
                    {"job_uuid": {"$gt": last}}, {"job_uuid": 1}, sort=[("job_uuid", ASCENDING)]
                )
            if document is None:
                return
            last = document["job_uuid"]
            yield last

    def counts_ready(self) -> bool:
        """Whether the database's jobs were counted (storage/counts.py): only then do counters mean much."""
        with translated(detail=True):
            return self._counts.find_one({"_id": counts.READY}, {"_id": 1}) is not None

    def counters(self) -> dict[tuple[str, str], int]:
        """What the counts say, by (scope, state), zeros left out: the counters and the pending changes
        whose entries are applied (those in flight are left out, as the records do not show them yet)."""
        for _ in range(counts.GENERATION_RETRIES):
            generation = self._generation()
            found = self._counted()
            if self._generation() == generation:  # no fold moved changes into counters meanwhile
                break
        return found

    def _generation(self) -> int:
        with translated(detail=True):
            document = self._counts.find_one({"_id": counts.FOLDS}, {"gen": 1})
        return int(document["gen"]) if document else 0

    def _counted(self) -> dict[tuple[str, str], int]:
        found: counts.Delta = Counter()
        with translated(detail=True):
            for document in self._counts.find({"scope": {"$exists": True}}):
                found[(str(document["scope"]), str(document["state"]))] += int(document.get("n", 0))
            changes = list(self._changes.find({counts.PENDING: True}))
            jobs = sorted({str(c["j"]) for c in changes})
            records = {
                str(r["_id"]): r for r in self._jobs.find({"_id": {"$in": jobs}}, counts.RECORD_FIELDS)
            }
            found_cancels = self._changes.find({"_id": {"$in": counts.cancel_keys(changes)}})
            cancels = {str(c["_id"]): c for c in found_cancels}
        found.update(counts.applied_total(changes, counts.verdicts(changes, records, cancels)))
        return {key: n for key, n in found.items() if n}

    def recounted(self) -> dict[tuple[str, str], int]:
        """The counts the records make, by a scan: what the counters must agree with."""
        with translated(detail=True):
            rows = list(self._jobs.aggregate(counts.RECORDS_PER_STATE))
            half_done = list(self._jobs.find(counts.HALF_DONE, counts.HALF_DONE_FIELDS))
            keys = counts.half_done_keys(half_done)
            written = {str(c["_id"]) for c in self._changes.find({"_id": {"$in": keys}}, {"_id": 1})}
        found = counts.from_records(rows, half_done, written)
        return {key: n for key, n in found.items() if n}
