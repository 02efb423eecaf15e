"""``pipelinejobs doctor``: check every job of a database against the service's invariants
(docs/operations.md, "pipelinejobs doctor": the properties each job's history and record must have).

- checks.py: the checks on one job, pure (a record and its history in, problems out);
- run.py: walking a database through them, rechecking what a write in flight may explain;
- report.py: text lines or one JSON document.

The command itself (flags, exit codes) is ``pipelinejobs_server.cli.doctor``.
"""

from .checks import Problem, Severity, check_job
from .run import Doctor, Summary, diagnose

__all__ = ["Doctor", "Problem", "Severity", "Summary", "check_job", "diagnose"]
