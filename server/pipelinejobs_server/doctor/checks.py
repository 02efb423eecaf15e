"""The checks the doctor makes on one job: pure functions over its record and its history, no database.

For each job the history is walked in seq order, once, holding only the last two entries: seq starts at 1
and has no gaps or repeats, the hash chain holds (the same ``ChainVerifier`` as ``VerifyHistory``), the
first entry is ``create`` and every later one is a legal transition of domain/fsm.py from the state its
predecessor left, and the job record agrees with the end of its history (the fields
``domain.records.ADVANCED_FIELDS`` names: state, last_event, head_hash, ever_running; seq by position).

A record exactly one entry behind its history is what a writer killed between its two writes leaves (ADR
003); the next reader rolls it forward, so it is a warning, an error only with ``--strict``.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pipelinejobs_server.domain import fsm
from pipelinejobs_server.domain.history import ChainVerifier
from pipelinejobs_server.domain.records import RecordedEntry
from pipelinejobs_server.storage.database import Document
from pipelinejobs_server.storage.documents import event_from_document

MAX_PROBLEMS_PER_JOB = 10  # a job damaged everywhere says so in ten lines; the summary counts the rest
RECHECKS = 3
# Problems in the history itself. Entries are never rewritten and are appended only after the one before,
# so no write in flight can cause these: they are reported even for a job that never held still.
HISTORY_PROBLEMS = frozenset(
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
    """The fields of a job record the checks compare with its history."""

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
class HistoryWalk:
    """One pass over a job's history in seq order: chain and transitions checked as entries arrive."""

    job: str
    problems: list[Problem] = field(default_factory=list)
    verifier: ChainVerifier = field(default_factory=ChainVerifier)
    broken: bool = False  # after the chain breaks, entries are only followed to find the history's end
    last: RecordedEntry | None = None
    previous: RecordedEntry | None = None
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
        if fsm.marks_started(entry.to_state) and self.first_running_seq is None:
            self.first_running_seq = entry.seq
        self.previous, self.last = self.last, recorded

    def _check(self, recorded: RecordedEntry) -> None:
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


def transition_problem(previous: RecordedEntry | None, recorded: RecordedEntry) -> tuple[str, str] | None:
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


def record_problems(record: Record, walk: HistoryWalk) -> list[Problem]:
    """Does the record agree with the end of its history (or is it one entry behind, as a crash leaves it)?"""
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
    walk = HistoryWalk(job)
    for event in events:
        walk.feed(event)
    return walk.problems + record_problems(record, walk), walk.events
