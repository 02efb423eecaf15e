"""``pipelinejobs doctor``: check every job of a database against the invariants of DESIGN section 6.

For each job it walks the log in seq order, once, holding only the last two entries: seq starts at 1
and has no gaps or repeats, the hash chain holds (the same ``ChainVerifier`` as ``VerifyHistory``),
the first entry is ``create`` and every later one is a legal transition of domain/fsm.py from the state
its predecessor left, and the job record agrees with the end of its log (seq, state, last_event,
head_hash, ever_running).

A record exactly one entry behind its log is what a writer killed between its two writes leaves (ADR
003); the next reader rolls it forward, so it is a warning, an error only with ``--strict``. The doctor
only reads; on a live database, a job that looks wrong is read again until two reads of its record
agree, so that a write in flight is not mistaken for damage.
"""

from __future__ import annotations

import argparse
import enum
import json
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from .domain import fsm
from .domain.errors import DatabaseUnavailable
from .domain.history import ChainVerifier
from .domain.identity import is_uuid
from .domain.records import RecordedEvent
from .storage.audit import AuditSource
from .storage.database import Document
from .storage.documents import event_from_document

MAX_PROBLEMS_PER_JOB = 10  # a job damaged everywhere says so in ten lines; the summary counts the rest
RECHECKS = 3
# Problems in the log itself. Entries are never rewritten and are appended only after the one before,
# so no write in flight can cause these: they are reported even for a job that never held still.
LOG_PROBLEMS = frozenset(
    {
        "MALFORMED_EVENT",
        "SEQ_GAP",
        "SEQ_DUPLICATE",
        "HASH_CHAIN",
        "FIRST_NOT_CREATE",
        "WRONG_FROM_STATE",
        "ILLEGAL_TRANSITION",
        "WRONG_TO_STATE",
    }
)


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    job_uuid: str
    severity: Severity
    code: str
    message: str
    seq: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "job_uuid": self.job_uuid,
            "severity": str(self.severity),
            "code": self.code,
            "seq": self.seq,
            "message": self.message,
        }


def _error(job: str, code: str, message: str, seq: int | None = None) -> Problem:
    return Problem(job, Severity.ERROR, code, message, seq)


def _warning(job: str, code: str, message: str, seq: int | None = None) -> Problem:
    return Problem(job, Severity.WARNING, code, message, seq)


@dataclass(frozen=True)
class Record:
    """The fields of a job record the checks compare with the log."""

    uuid: str
    seq: int
    state: str
    last_event: str
    head_hash: str
    ever_running: bool
    cancelled: bool


def parse_record(document: Document) -> Record | str:
    """The record, or why it cannot be read."""
    seq, state = document.get("seq"), document.get("state")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        return f"seq is {seq!r}, not a non-negative integer"
    if not isinstance(state, str) or not fsm.is_state(state):
        return f"state is {state!r}, not a state of the machine"
    return Record(
        uuid=str(document["_id"]),
        seq=seq,
        state=state,
        last_event=str(document.get("last_event", "")),
        head_hash=str(document.get("head_hash", "")),
        ever_running=bool(document.get("ever_running", False)),
        cancelled=bool(document.get("cancelled", False)),
    )


@dataclass
class LogWalk:
    """One pass over a job's log in seq order: chain and transitions checked as entries arrive."""

    job: str
    problems: list[Problem] = field(default_factory=list)
    verifier: ChainVerifier = field(default_factory=ChainVerifier)
    broken: bool = False  # after the chain breaks, entries are only followed to find the log's end
    last: RecordedEvent | None = None
    previous: RecordedEvent | None = None
    first_running_seq: int | None = None
    events: int = 0

    def feed(self, document: Document) -> None:
        self.events += 1
        try:
            recorded = event_from_document(document)
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            seq = document.get("seq")
            self.problems.append(
                _error(
                    self.job,
                    "MALFORMED_EVENT",
                    f"entry {document.get('_id')!r} cannot be read: {type(error).__name__}: {error}",
                    seq if isinstance(seq, int) else None,
                )
            )
            self.broken = True
            return
        if not self.broken:
            self._check(recorded)
        entry = recorded.entry
        if entry.to_state == "RUNNING" and self.first_running_seq is None:
            self.first_running_seq = entry.seq
        self.previous, self.last = self.last, recorded

    def _check(self, recorded: RecordedEvent) -> None:
        entry, expected = recorded.entry, self.verifier.checked + 1
        if entry.seq != expected:
            code = "SEQ_GAP" if entry.seq > expected else "SEQ_DUPLICATE"
            self.problems.append(
                _error(self.job, code, f"expected seq {expected}, found {entry.seq}", expected)
            )
            self.broken = True
            return
        failure = self.verifier.feed(entry, recorded.hash)
        if failure is not None:
            self.problems.append(_error(self.job, "HASH_CHAIN", failure.reason, failure.first_bad_seq))
            self.broken = True
            return
        transition = transition_problem(self.last, recorded)
        if transition is not None:
            self.problems.append(_error(self.job, transition[0], transition[1], entry.seq))


def transition_problem(previous: RecordedEvent | None, recorded: RecordedEvent) -> tuple[str, str] | None:
    """(code, message) if ``recorded`` is not a legal step from the state ``previous`` left."""
    entry = recorded.entry
    move = f"{entry.from_state or '(none)'} --{entry.name}--> {entry.to_state}"
    if previous is None:
        if (entry.name, entry.from_state, entry.to_state) != (fsm.CREATE_EVENT, "", fsm.INITIAL_STATE):
            return "FIRST_NOT_CREATE", f"the first entry must be '--create--> CREATED', found {move}"
        return None
    if entry.from_state != previous.entry.to_state:
        return "WRONG_FROM_STATE", f"{move}, but seq {entry.seq - 1} left the job {previous.entry.to_state}"
    if not fsm.is_event(entry.name) or not fsm.is_state(entry.to_state):
        return "ILLEGAL_TRANSITION", f"{move}: unknown event or state"
    decision = fsm.decide(entry.from_state, entry.name)
    if not decision:
        return "ILLEGAL_TRANSITION", f"{move}: {decision.reason}"
    if entry.to_state != decision.to_state:
        return "WRONG_TO_STATE", f"{move}, but the machine leads to {decision.to_state}"
    return None


def record_problems(record: Record, walk: LogWalk) -> list[Problem]:
    """Does the record agree with the end of its log (or is it one entry behind, as a crash leaves it)?"""
    job, last = record.uuid, walk.last
    log_end = last.entry.seq if last is not None else 0
    if record.seq > log_end:
        return [
            _error(job, "RECORD_AHEAD", f"the record is at seq {record.seq} but the log ends at {log_end}")
        ]
    if record.seq < log_end - 1:
        return [_error(job, "RECORD_BEHIND", f"the record is at seq {record.seq}, its log at {log_end}")]
    problems = []
    matched = last
    if record.seq == log_end - 1:
        pending = "creation" if record.seq == 0 else f"seq {log_end}"
        problems.append(
            _warning(
                job,
                "RECORD_ONE_BEHIND",
                f"the record is at seq {record.seq}, its log at {log_end}: a writer stopped between its "
                f"two writes; the next read or write of the job completes {pending}",
                log_end,
            )
        )
        matched = walk.previous
    if last is None:
        # Inserted, but its create entry never written: CreateJob stopped between the two (and was never
        # answered). The next read of the job appends the entry.
        message = "the record has no create entry yet; the next read or write of the job appends it"
        return [_warning(job, "CREATION_PENDING", message)]
    if matched is None:
        return problems  # seq 0 and only the create entry in the log: nothing to compare yet
    entry = matched.entry
    differing = [
        f"{name} {mine!r} != {theirs!r}"
        for name, mine, theirs in (
            ("state", record.state, entry.to_state),
            ("last_event", record.last_event, entry.name),
            ("head_hash", record.head_hash, matched.hash),
        )
        if mine != theirs
    ]
    if differing:
        problems.append(
            _error(job, "RECORD_MISMATCH", f"record vs entry {entry.seq}: " + "; ".join(differing), entry.seq)
        )
    should_have_run = walk.first_running_seq is not None and walk.first_running_seq <= record.seq
    if record.ever_running != should_have_run:
        problems.append(
            _error(
                job,
                "EVER_RUNNING_MISMATCH",
                f"the record says ever_running={record.ever_running}, its log says {should_have_run} "
                "(decides whether CancelJob may delete the job)",
            )
        )
    return problems


def check_job(document: Document, events: Iterable[Document]) -> tuple[list[Problem], int]:
    """The problems of one job and the number of log entries read. ``events`` in seq order."""
    job = str(document.get("_id"))
    record = parse_record(document)
    if isinstance(record, str):
        return [_error(job, "MALFORMED_RECORD", record)], 0
    if record.cancelled:
        message = "cancelled but not yet deleted: the next CreateJob of the same job finishes the cancel"
        return [_warning(job, "CANCEL_PENDING", message)], 0
    walk = LogWalk(job)
    for event in events:
        walk.feed(event)
    return walk.problems + record_problems(record, walk), walk.events


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
    """Checks a database through an ``AuditSource``; ``run()`` yields problems as it finds them."""

    def __init__(self, source: AuditSource, jobs: Sequence[str] = ()) -> None:
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
            for problem in self._orphans():
                self.summary.count(problem)
                yield problem

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
        lasting = [problem for problem in problems if problem.code in LOG_PROBLEMS]
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


def _same(before: Document, after: Document | None) -> bool:
    keys = ("seq", "state", "head_hash", "cancelled")
    return after is not None and all(before.get(key) == after.get(key) for key in keys)


def diagnose(uri: str, database: str, jobs: Sequence[str] = ()) -> tuple[list[Problem], Summary]:
    """Check a database in-process (tests, scripts): every problem found, and the totals."""
    with AuditSource(uri, database) as source:
        doctor = Doctor(source, jobs)
        problems = list(doctor.run())
    return problems, doctor.summary


# -- the command ----------------------------------------------------------------------------------------

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE, EXIT_UNAVAILABLE = 0, 1, 2, 3
DEFAULT_TIMEOUT_MS = 5000


class TextReport:
    """One line per problem as it is found, then a summary line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def problem(self, problem: Problem) -> None:
        seq = "-" if problem.seq is None else str(problem.seq)
        print(
            f"{problem.severity:<7} {problem.job_uuid} seq {seq:<6} {problem.code}: {problem.message}",
            file=self._out,
            flush=True,
        )

    def finish(self, database: str, summary: Summary, strict: bool, elapsed_s: float) -> None:
        verdict = "healthy" if summary.healthy(strict) else "PROBLEMS FOUND"
        more = f" ({summary.unreported} more not shown)" if summary.unreported else ""
        mode = ", --strict: warnings count" if strict else ""
        print(
            f"{verdict}: database {database!r}, {summary.jobs} jobs and {summary.events} log entries "
            f"checked in {elapsed_s:.1f} s: {summary.errors} errors, {summary.warnings} warnings{more}{mode}",
            file=self._out,
        )


class JsonReport:
    """One JSON document, written as problems are found so that nothing accumulates in memory."""

    def __init__(self, out: TextIO, database: str) -> None:
        self._out = out
        self._first = True
        out.write(f'{{"database": {json.dumps(database)}, "problems": [')

    def problem(self, problem: Problem) -> None:
        self._out.write(("\n  " if self._first else ",\n  ") + json.dumps(problem.as_json()))
        self._out.flush()
        self._first = False

    def finish(self, database: str, summary: Summary, strict: bool, elapsed_s: float) -> None:
        totals = {
            "jobs": summary.jobs,
            "events": summary.events,
            "errors": summary.errors,
            "warnings": summary.warnings,
            "unreported": summary.unreported,
            "strict": strict,
            "healthy": summary.healthy(strict),
            "seconds": round(elapsed_s, 3),
        }
        self._out.write(("" if self._first else "\n") + f'], "summary": {json.dumps(totals)}}}\n')


def command(
    options: argparse.Namespace,
    environ: Mapping[str, str],
    out: TextIO = sys.stdout,
    err: TextIO = sys.stderr,
) -> int:
    """Run ``pipelinejobs doctor``. Exit codes: 0 healthy, 1 problems, 2 usage, 3 database unavailable."""
    uri = options.mongodb_uri or environ.get("MONGODB_URI", "")
    database = options.database or environ.get("PIPELINEJOBS_DATABASE") or "pipelinejobs"
    if not uri:
        print("error: set MONGODB_URI or --mongodb-uri (the database the servers use)", file=err)
        return EXIT_USAGE
    bad = [job for job in options.job if not is_uuid(job)]
    if bad:
        print(f"error: --job takes a job uuid, got {bad[0]!r}", file=err)
        return EXIT_USAGE
    try:
        timeout_ms = int(environ.get("PIPELINEJOBS_DB_TIMEOUT_MS") or DEFAULT_TIMEOUT_MS)
    except ValueError:
        print("error: PIPELINEJOBS_DB_TIMEOUT_MS must be an integer (milliseconds)", file=err)
        return EXIT_USAGE
    started = time.monotonic()
    with AuditSource(uri, database, timeout_ms=timeout_ms) as source:
        try:
            source.ping()
            if not source.has_jobs():
                print(f"error: database {database!r} has no jobs collection (check --database)", file=err)
                return EXIT_USAGE
            doctor = Doctor(source, options.job)
            report = JsonReport(out, database) if options.json else TextReport(out)
            for problem in doctor.run():
                report.problem(problem)
        except DatabaseUnavailable as error:
            print(f"error: {error.message}", file=err)
            return EXIT_UNAVAILABLE
    report.finish(database, doctor.summary, options.strict, time.monotonic() - started)
    return EXIT_OK if doctor.summary.healthy(options.strict) else EXIT_PROBLEMS
