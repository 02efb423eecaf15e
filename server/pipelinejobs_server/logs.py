"""Logging: one line per record, as text or JSON, each carrying the request id of the call it belongs to.

The request id is the caller's ``x-request-id`` metadata when it sends one (so a trace can cross the
shim and the server), else a fresh one; it is returned to the caller in the same metadata key. Nothing
the service logs holds a token or an API key: messages are built from reasons, uuids and codes only.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")
FORMATS = ("text", "json")
_SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def request_id(presented: str | None) -> str:
    """The caller's id when it is a plain token of at most 64 characters; a new one otherwise."""
    if presented and _SAFE_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex[:16]


class _WithRequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if getattr(record, "request_id", "-") != "-":
            entry["request_id"] = record.request_id  # type: ignore[attr-defined]
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, sort_keys=True)


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is at the time of each record, not at configuration time
    (a program run in-process, as the tests do, may have its stderr swapped and closed meanwhile)."""

    @property
    def stream(self) -> object:
        return sys.stderr

    @stream.setter
    def stream(self, value: object) -> None:
        pass


def configure(level: str = "INFO", log_format: str = "text") -> None:
    """Send every log record to stderr, one per line, in the chosen format."""
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}")
    handler = _StderrHandler()
    handler.addFilter(_WithRequestId())
    if log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s request_id=%(request_id)s %(message)s")
        )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
