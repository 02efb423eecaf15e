"""Where the service reads the time: an injectable clock, so that tests can move time instead of waiting.

Every timestamp the service writes (history entries, token expiries, creation times) and every expiry it
checks comes from one ``Clock`` given to the services by the composition root (app.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from .history import utc_now_ms


class Clock(Protocol):
    def now(self) -> datetime:
        """Now, timezone-aware in UTC, truncated to the millisecond (what MongoDB stores)."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> datetime:
        return utc_now_ms()


SYSTEM_CLOCK = SystemClock()
