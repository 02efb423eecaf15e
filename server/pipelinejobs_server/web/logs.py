"""Logging without secrets: the job token travels in callback query strings, so every line is redacted.

uvicorn's own access log prints the raw query string, so the apps turn it off and write their own
(``AccessLog``) with the sensitive parameters masked. ``RedactingFilter`` is a second line of defence on
the apps' and uvicorn's loggers, for any message or traceback that might quote a URL or a payload.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote

from starlette.types import ASGIApp, Message, Receive, Scope, Send

MASK = "REDACTED"
SENSITIVE = frozenset({"token", "x-nonce", "nonce", "api_key", "api-key", "apikey", "authorization"})
_IN_TEXT = re.compile(
    r"""(?ix)
    (\b(?:token|x-nonce|nonce|api[_-]?key)=)[^&\s"'<>]*      # token=... in a URL
    | ("(?:token|x-nonce|nonce|api[_-]?key)"\s*:\s*")[^"]*    # "token": "..." in JSON
    | ('(?:token|x-nonce|nonce|api[_-]?key)'\s*:\s*')[^']*    # 'token': '...' in a Python repr
    | (\bbearer\s+)\S+                                        # an Authorization header
    """
)
# Logger filters apply only to records logged on that very logger, not to ones propagated from
# children, so each logger that may see a request is listed.
LOGGERS = (
    "pipelinejobs.shim",
    "pipelinejobs.shim.access",
    "pipelinejobs.ui",
    "pipelinejobs.ui.access",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
)


def redact_query(query: str) -> str:
    """The query string with the values of sensitive parameters masked.

    Parsed (so a percent-encoded ``tok%65n=`` is caught too) and rebuilt; ``${STATUS}`` stays readable.
    """
    pairs = parse_qsl(query, keep_blank_values=True)
    return "&".join(
        f"{quote(key, safe='')}={MASK if key.lower() in SENSITIVE else quote(value, safe='${}')}"
        for key, value in pairs
    )


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets and anything shaped like a credential masked."""
    for secret in secrets:
        if len(secret) >= 4:  # a one-letter "token" would mask half the message and protect nothing
            text = text.replace(secret, MASK)
    return _IN_TEXT.sub(lambda match: (next(g for g in match.groups() if g is not None)) + MASK, text)


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message and traceback before any handler formats it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


def install_redaction() -> None:
    """Put the filter on every logger the apps' requests may reach (idempotent)."""
    for name in LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
            logger.addFilter(RedactingFilter())


class AccessLog:
    """One line per request on ``logger`` (each app has its own): method, path, redacted query, status
    and duration."""

    def __init__(self, app: ASGIApp, logger: str) -> None:
        self.app = app
        self._log = logging.getLogger(logger)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # if the app dies before it answers, uvicorn answers 500

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            query = redact_query(scope.get("query_string", b"").decode("latin-1"))
            client = scope.get("client") or ("-", 0)
            self._log.info(
                '%s "%s %s%s" %d %.1fms',
                client[0],
                scope["method"],
                scope["path"],
                f"?{query}" if query else "",
                status,
                (time.perf_counter() - started) * 1000,
            )
