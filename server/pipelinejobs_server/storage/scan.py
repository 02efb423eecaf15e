"""A read-only scan of a whole database, page by page, for ``pipelinejobs doctor``.

The doctor is an operator tool over the database (like ``mongodump``), not a client of the service: it
reads the collections directly with a blocking pymongo client and never writes. Every read is a keyset
page over an index (``_id`` for jobs, the unique ``(job_uuid, seq)`` index for a job's history), so memory
stays bounded by one page however large the database, no cursor stays open while the caller works, and
the database never has to sort a whole collection in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import TracebackType
from typing import Any

from pymongo import ASCENDING, MongoClient
from pymongo.errors import ConfigurationError

from .database import HISTORY, JOBS, Document, translated

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
        query: Document = {"job_uuid": job_uuid}
        while True:
            with translated(detail=True):
                page = list(self._events.find(query).sort("seq", ASCENDING).limit(self._page))
            yield from page
            if len(page) < self._page:
                return
            query = {"job_uuid": job_uuid, "seq": {"$gt": page[-1].get("seq")}}

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
