"""Executor statuses -> state-machine events: the one table per executor, documented row by row.

docs/callbacks.md carries these tables, generated from this module (``make docs``, scripts/gen_docs.py;
``make check`` fails when the page is stale).

The rules of thumb, the same for both executors:

- before the computation starts (staging, submitting, queued) -> ``update``: recorded, the state does
  not move. The reactor that launched the job has usually sent ``run`` already; if not, the job stays
  CREATED, which is the truth: nothing is computing yet.
- the executor says the computation started -> ``run``.
- anything in the middle that is not an end (heartbeats, pauses, archiving) -> ``update``.
- the executor's one success status, sent after the outputs are archived -> ``finish``.
- every status that ends the executor's job without a usable result -> ``fail``. The original manager
  mapped Agave's ``KILLED`` to ``update``, so a killed job stayed RUNNING forever; here every end is
  an end.

A status that is not in a table is never guessed at: the shim records it in the server's
rejected-events log (reason ``UNMAPPED_STATUS``) and changes nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final

from pipelinejobs_server.domain import fsm


@dataclass(frozen=True)
class StatusRule:
    status: str
    event: str
    why: str


def _table(*rows: tuple[str, str, str]) -> Mapping[str, StatusRule]:
    table = {status: StatusRule(status, event, why) for status, event, why in rows}
    for rule in table.values():
        # Checked on import: a table naming an event the machine does not have, or one a job token
        # may not send (reset, ready, create), must never reach a running shim.
        if not fsm.is_event(rule.event) or fsm.permission(rule.event) is not fsm.Permission.JOB_TOKEN:
            raise ValueError(f"status {rule.status} maps to {rule.event!r}, which a callback cannot send")
    return MappingProxyType(table)


_QUEUED = "accepted by the executor, not computing yet: recorded, the state stays"

AGAVE: Final = _table(
    ("PENDING", "update", _QUEUED),
    ("PROCESSING_INPUTS", "update", _QUEUED),
    ("STAGING_INPUTS", "update", _QUEUED),
    ("STAGED", "update", _QUEUED),
    ("STAGING_JOB", "update", _QUEUED),
    ("SUBMITTING", "update", _QUEUED),
    ("QUEUED", "update", "waiting in the batch scheduler's queue: not computing yet"),
    ("RUNNING", "run", "the computation started (CREATED -> RUNNING; RUNNING stays RUNNING)"),
    ("PAUSED", "update", "suspended, and may resume: not an end"),
    ("HEARTBEAT", "update", "still alive; each accepted event also extends the job token"),
    ("CLEANING_UP", "update", "computation over, outputs not archived yet: not finished"),
    ("ARCHIVING", "update", "outputs are being copied to the job's archive path"),
    (
        "ARCHIVING_FINISHED",
        "update",
        "outputs archived; Agave sends FINISHED next, and that is the one finish",
    ),
    (
        "ARCHIVING_FAILED",
        "fail",
        "the outputs never reached the archive path, which is the job's deliverable",
    ),
    ("FINISHED", "finish", "done and archived: RUNNING -> FINISHED"),
    ("FAILED", "fail", "the executor reports failure"),
    ("KILLED", "fail", "killed by a user or an admin: the job ended without a result (was update)"),
    ("STOPPED", "fail", "stopped by the executor: the job ended without a result"),
)

TAPIS: Final = _table(
    ("PENDING", "update", _QUEUED),
    ("PROCESSING_INPUTS", "update", _QUEUED),
    ("STAGING_INPUTS", "update", _QUEUED),
    ("STAGING_JOB", "update", _QUEUED),
    ("SUBMITTING_JOB", "update", _QUEUED),
    ("QUEUED", "update", "waiting in the batch scheduler's queue: not computing yet"),
    ("RUNNING", "run", "the computation started (CREATED -> RUNNING; RUNNING stays RUNNING)"),
    ("ARCHIVING", "update", "outputs are being copied to the archive location"),
    ("BLOCKED", "update", "waiting on a recoverable condition; Tapis resumes it: not an end"),
    ("PAUSED", "update", "suspended, and may resume: not an end"),
    ("FINISHED", "finish", "done; Tapis archives before it reports FINISHED: RUNNING -> FINISHED"),
    ("CANCELLED", "fail", "cancelled by a user: the job ended without a result"),
    ("FAILED", "fail", "the executor reports failure"),
)

TABLES: Final[Mapping[str, Mapping[str, StatusRule]]] = MappingProxyType({"agave": AGAVE, "tapis": TAPIS})

# A status that is a template's placeholder, never substituted: the job template's URL reached us as it
# was written, or nearly. ``${STATUS}`` verbatim; ``$STATUS`` when curl's URL globbing took the braces for
# a set (``{STATUS}`` is a set of one) or a template language wrote it so; ``{STATUS}`` when a shell ate
# the ``$``. No executor's status has a ``$`` or is a bare name in braces.
_PLACEHOLDER = re.compile(r".*\$.*|\{\w+\}", re.DOTALL)


def is_placeholder(status: str) -> bool:
    """Whether ``status`` is an unresolved placeholder (``${STATUS}``, ``$STATUS``, ``{STATUS}``, …)."""
    return _PLACEHOLDER.fullmatch(status) is not None


def markdown(table: Mapping[str, StatusRule]) -> str:
    rows = ["| status | event | why |", "|---|---|---|"]
    rows += [f"| `{rule.status}` | `{rule.event}` | {rule.why} |" for rule in table.values()]
    return "\n".join(rows)
