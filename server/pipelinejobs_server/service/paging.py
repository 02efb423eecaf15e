"""Opaque keyset page tokens and pages: the one place listings are paged (ListJobs, ListJobEvents,
ListRejectedEvents, ListPipelines). A page is cut by rows here and may be cut shorter by its sender, who
asks the page for the token after the last row it kept (``Page.cut``).

A token is base64url of a small JSON document, bound to the listing it came from: a token of another
listing (another job's history, other ListJobs filters) is refused rather than misread.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeVar

from pipelinejobs_server.domain.canonical import canonical_json
from pipelinejobs_server.domain.errors import InvalidArgument
from pipelinejobs_server.settings import Limits

MAX_TOKEN_LENGTH = 1024  # our tokens are a few dozen bytes; anything longer is not one of ours
# What a position may hold: the times this service writes, and the database's 64-bit integers. A token
# is the client's to edit; a position outside these would reach the driver and fail there.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
MAX_SEQ = 2**63 - 1
Item = TypeVar("Item")


def encode(listing: str, position: dict[str, Any]) -> str:
    raw = canonical_json({"l": listing, "p": position}).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode(listing: str, token: str) -> dict[str, Any] | None:
    """The position in ``token``; None for the first page. Tokens of another listing are refused."""
    if not token:
        return None
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidArgument("page_token is not a token this service issued", field="page_token")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        document = json.loads(raw)
    except (binascii.Error, ValueError, RecursionError):
        raise InvalidArgument("page_token is not a token this service issued", field="page_token") from None
    if (
        not isinstance(document, dict)
        or document.get("l") != listing
        or not isinstance(document.get("p"), dict)
    ):
        raise InvalidArgument("page_token belongs to another listing", field="page_token")
    position: dict[str, Any] = document["p"]
    return position


def page_size(requested: int, limits: Limits) -> int:
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", field="page_size")
    return min(requested or limits.default_page_size, limits.max_page_size)


def encode_moment(listing: str, moment: datetime, uuid: str) -> str:
    return encode(listing, {"t": moment.isoformat(), "id": uuid})


def decode_moment(listing: str, token: str) -> tuple[datetime, str] | None:
    """A keyset position of (timestamp, uuid); None for the first page."""
    position = decode(listing, token)
    if position is None:
        return None
    try:
        moment, uuid = datetime.fromisoformat(position["t"]), position["id"]
        # Comparing an aware time converts it to UTC, which overflows an hour from year 1 or 9999.
        sane = moment.utcoffset() is not None and EARLIEST <= moment <= LATEST and isinstance(uuid, str)
    except (KeyError, TypeError, ValueError, OverflowError):
        sane = False
    if not sane:
        raise InvalidArgument("page_token is malformed", field="page_token")
    return moment, uuid


def encode_seq(listing: str, seq: int) -> str:
    return encode(listing, {"seq": seq})


def decode_seq(listing: str, token: str) -> int:
    """A position in a job's history: the last seq of the previous page (0 for the first page)."""
    position = decode(listing, token) or {"seq": 0}
    seq = position.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= MAX_SEQ:
        raise InvalidArgument("page_token is malformed", field="page_token")
    return seq


@dataclass(frozen=True)
class Page(Generic[Item]):
    """One page of a listing: its rows, and the token that continues after any one of them.

    The service cuts pages by rows; whoever sends the page may send fewer (a reply has a size limit the
    service knows nothing of) and then continues the listing with ``token_after`` the last row it kept.
    Tokens name a keyset position, so a page cut short loses nothing and repeats nothing.
    """

    rows: list[Item]
    token_after: Callable[[Item], str]
    # Whether rows may follow the last one: the next page's token, if the whole page is sent.
    more: bool

    def cut(self, count: int) -> tuple[list[Item], str]:
        """The first ``count`` rows and the token of the page after them ("" after the last page)."""
        if count >= len(self.rows):
            return self.rows, self.token_after(self.rows[-1]) if self.rows and self.more else ""
        if count < 1:
            raise ValueError("a page that is cut holds at least one row, or paging would never advance")
        return self.rows[:count], self.token_after(self.rows[count - 1])


def page(items: Sequence[Item], limit: int, token_after: Callable[[Item], str]) -> Page[Item]:
    """A page read with ``limit``: another may follow when it is full.

    A page that is exactly full gets a token even if nothing follows; the next page is then empty.
    (ListJobs reads one row more and knows; these listings keep their cheaper query.)
    """
    rows = list(items)
    return Page(rows, token_after, more=len(rows) == limit)
