"""Logging without secrets: the job token travels in callback query strings, so every line is redacted.

uvicorn's own access log prints the raw query string, so the apps turn it off and write their own
(``AccessLog``) with the sensitive parameters masked, and the path as it was sent (still percent-encoded,
so no byte of it can break the line), secret-shaped segments masked and the length capped.
``RedactingFilter`` is a second line of defence on the apps' and uvicorn's loggers, for any message or
traceback that might quote a URL or a payload.
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
# A path segment shaped like a secret: a job token or a generated key (URL-safe base64 of 32 bytes), or a
# configured key, percent-encoded. Mixed character classes tell it from a long word; a uuid is no secret.
_SECRET_ALPHABET = re.compile(r"[A-Za-z0-9_\-+=%]{24,}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
MAX_LOGGED_PATH = 256
MAX_LOGGED_QUERY = 512
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


def _secret_shaped(segment: str) -> bool:
    if not _SECRET_ALPHABET.fullmatch(segment) or _UUID.fullmatch(segment):
        return False
    classes = (str.isupper, str.islower, str.isdigit)
    return sum(any(test(char) for char in segment) for test in classes) >= 2


def _printable_ascii(text: str) -> str:
    """Every character outside printable ASCII percent-encoded (as its bytes, for non-ASCII ones)."""
    return "".join(
        char if "!" <= char <= "~" else "".join(f"%{byte:02X}" for byte in char.encode("utf-8", "replace"))
        for char in text
    )


def _capped(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def loggable_path(scope: Scope) -> str:
    """The request's path for one log line: as sent on the wire, printable ASCII only, secret-shaped
    segments masked (``/v1/callbacks/agave/<token>``, a mistyped URL), ``token=`` forms redacted, capped.

    The raw path is still percent-encoded, so ``%0a`` stays three characters and cannot end the line;
    a path without one (an app called directly) is encoded here the same way.
    """
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if isinstance(raw, bytes) else quote(str(scope.get("path", "")), safe="/")
    path = _printable_ascii(path)
    path = "/".join(MASK if _secret_shaped(segment) else segment for segment in path.split("/"))
    return _capped(redact(path), MAX_LOGGED_PATH)


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
    """One line per request on ``logger`` (each app has its own): method, path and query (both redacted,
    escaped and capped, see ``loggable_path``), status and duration."""

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
            query = _capped(redact_query(scope.get("query_string", b"").decode("latin-1")), MAX_LOGGED_QUERY)
            client = scope.get("client") or ("-", 0)
            self._log.info(
                '%s "%s %s%s" %d %.1fms',
                client[0],
                scope["method"],
                loggable_path(scope),
                f"?{query}" if query else "",
                status,
                (time.perf_counter() - started) * 1000,
            )
