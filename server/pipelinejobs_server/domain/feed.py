"""The feed of everything that happens: its entries, its filters and its cursors (ADR 015).

The feed is one ordered log of every accepted event of every job, plus one ``cancelled`` entry for each
cancelled job. Each entry has a ``position``: an integer that a single relay assigns in the order it
feeds entries (service/feed_relay.py), so a position is taken only after every smaller one is visible.
A cursor names a position of one installation's feed: its ``epoch`` (a random id created with the
feed) and the position. It is opaque to callers, the same on every replica, and survives restarts.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from .errors import InvalidArgument

EVENT, CANCELLED = "event", "cancelled"
KINDS: Final = (EVENT, CANCELLED)

_PREFIX = "pjf1"  # the cursor format's version: a later format can be told apart and still read


@dataclass(frozen=True)
class FeedEntry:
    position: int
    kind: str
    uuid: str
    job_uuid: str
    pipeline_uuid: str
    links: dict[str, list[str]]
    seq: int
    name: str  # the event; "" for a cancelled entry
    from_state: str
    to_state: str  # "" for a cancelled entry
    timestamp: datetime
    data: dict[str, Any]
    source: str
    hash: str
    fed_at: datetime


@dataclass(frozen=True)
class FeedFilter:
    """Entries whose fields match every filter given; the values of one filter are alternatives."""

    pipeline_uuids: tuple[str, ...] = ()
    events: tuple[str, ...] = ()
    to_states: tuple[str, ...] = ()
    job_uuids: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    links: dict[str, tuple[str, ...]] = field(default_factory=dict)
    include_cancelled: bool = False

    @property
    def about_events(self) -> bool:
        """True when the filter selects by what happened, which a cancelled entry does not have."""
        return bool(self.events or self.to_states or self.sources)


@dataclass(frozen=True)
class Cursor:
    epoch: str
    position: int

    def encode(self) -> str:
        text = f"{_PREFIX}:{self.epoch}:{self.position}"
        return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(value: str, name: str) -> Cursor:
    """The cursor a caller sent, or INVALID_ARGUMENT naming the field for anything not made by a feed."""
    problem = InvalidArgument(f"{name} is not a cursor of the event feed", field=name)
    if len(value) > 200:
        raise problem
    try:
        text = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise problem from None
    parts = text.split(":")
    if len(parts) != 3 or parts[0] != _PREFIX or not parts[1] or not parts[2].isdigit():
        raise problem
    return Cursor(parts[1], int(parts[2]))
