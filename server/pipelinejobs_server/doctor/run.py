"""Walking a whole database (or some of its jobs) through the checks, on a live database too.

The doctor only reads; on a live database, a job that looks wrong is read again until two reads of its
record agree, so that a write in flight is not mistaken for damage.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from pipelinejobs_server.storage.database import Document
from pipelinejobs_server.storage.scan import DatabaseScan

from .checks import (
    HISTORY_PROBLEMS,
    MAX_PROBLEMS_PER_JOB,
    RECHECKS,
    Problem,
    Severity,
    _error,
    _warning,
    check_job,
)


@dataclass
class Summary:
    jobs: int = 0
    events: int = 0
    errors: int = 0
    warnings: int = 0
    unreported: int = 0  # problems past MAX_PROBLEMS_PER_JOB

    def count(self, problem: Problem) -> None:
        if problem.severity is Severity.ERROR:
            self.errors += 1
        else:
            self.warnings += 1

    def healthy(self, strict: bool) -> bool:
        return self.errors == 0 and (not strict or self.warnings == 0)


class Doctor:
    """Checks a database through an ``DatabaseScan``; ``run()`` yields problems as it finds them."""

    def __init__(self, source: DatabaseScan, jobs: Sequence[str] = ()) -> None:
        self._source = source
        self._only = list(jobs)
        self.summary = Summary()

    def run(self) -> Iterator[Problem]:
        self._source.ping()
        records = (self._source.record(uuid) for uuid in self._only) if self._only else self._source.records()
        for position, document in enumerate(records):
            if document is None:
                yield _error(self._only[position], "JOB_NOT_FOUND", "no such job record")
                self.summary.errors += 1
                continue
            problems, events = self._settled_check(document)
            self.summary.jobs += 1
            self.summary.events += events
            self.summary.unreported += max(0, len(problems) - MAX_PROBLEMS_PER_JOB)
            for problem in problems[:MAX_PROBLEMS_PER_JOB]:
                self.summary.count(problem)
                yield problem
        if not self._only:
            for problem in [*self._orphans(), *self._counts()]:
                self.summary.count(problem)
                yield problem

    def _counts(self) -> Iterator[Problem]:
        """Do the counters (storage/counts.py) say what the records do? On a live database the records
        are counted between two reads of the counters, and only a mismatch seen twice the same while
        the counters held still is an error; counters that never held still are a warning."""
        if not self._source.counts_ready():
            return  # not counted yet (the server's upkeep does it): nothing to compare
        seen: list[tuple[dict[tuple[str, str], int], dict[tuple[str, str], int]]] = []
        for _ in range(RECHECKS):
            before = self._source.counters()
            recounted = self._source.recounted()
            if self._source.counters() != before:
                continue
            if recounted == before:
                return
            if (recounted, before) in seen:
                yield _error("", "COUNTS_WRONG", _difference(recounted, before))
                return
            seen.append((recounted, before))
        yield _warning(
            "", "COUNTS_CHANGING", "the job counts kept changing while they were compared with the records"
        )

    def _settled_check(self, document: Document) -> tuple[list[Problem], int]:
        """Check a job; if it looks wrong, again on fresh reads until its record holds still."""
        job = str(document["_id"])
        problems, events = check_job(document, self._source.events(job))
        for _ in range(RECHECKS if problems else 0):
            before = self._source.record(job)
            if before is None:
                return [], 0  # cancelled and deleted while we looked: nothing left to check
            problems, events = check_job(before, self._source.events(job))
            if _same(before, self._source.record(job)):
                return problems, events
        if not problems:
            return problems, events
        lasting = [problem for problem in problems if problem.code in HISTORY_PROBLEMS]
        changing = _warning(
            job, "JOB_CHANGING", "the record kept changing while it was compared with its log"
        )
        return [*lasting, changing], events

    def _orphans(self) -> Iterator[Problem]:
        """Log entries whose job record is gone. Counted first: the scan runs only if the totals differ."""
        if self._source.count_events() == self.summary.events:
            return
        for job in self._source.logged_job_uuids():
            if self._source.record(job) is None:
                count = self._source.count_events(job)
                yield _warning(
                    job,
                    "ORPHAN_EVENTS",
                    f"{count} log entries without a job record: written by a writer that lost a race with "
                    "CancelJob and stopped before removing them; never acknowledged",
                )


def _difference(records: dict[tuple[str, str], int], counters: dict[tuple[str, str], int]) -> str:
    wrong = [
        f"{'all jobs' if scope == '*' else 'pipeline ' + scope} {state}: "
        f"counted {counters.get((scope, state), 0)}, the records say {records.get((scope, state), 0)}"
        for scope, state in sorted(set(records) | set(counters))
        if records.get((scope, state), 0) != counters.get((scope, state), 0)
    ]
    return "the job counts disagree with the records: " + "; ".join(wrong[:10])


def _same(before: Document, after: Document | None) -> bool:
    keys = ("seq", "state", "head_hash", "cancelled")
    return after is not None and all(before.get(key) == after.get(key) for key in keys)


def diagnose(uri: str, database: str, jobs: Sequence[str] = ()) -> tuple[list[Problem], Summary]:
    """Check a database in-process (tests, scripts): every problem found, and the totals."""
    with DatabaseScan(uri, database) as source:
        doctor = Doctor(source, jobs)
        problems = list(doctor.run())
    return problems, doctor.summary
