"""History entries and their hash chain.

Each entry's hash is SHA-256 over the canonical JSON of its fields plus the previous entry's hash, so
editing, removing or reordering any entry breaks every hash after it. docs/history.md gives the encoding.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .canonical import canonical_json

HASH_VERSION = 1


def utc_now_ms() -> datetime:
    """Now, in UTC, truncated to the millisecond.

    MongoDB stores milliseconds: truncating first lets a hash computed now match the stored entry.
    """
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def format_timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass(frozen=True)
class Entry:
    job_uuid: str
    seq: int
    uuid: str
    name: str
    from_state: str
    to_state: str
    timestamp: datetime
    data: dict[str, Any]
    source: str
    idempotency_key: str
    prev_hash: str

    def canonical(self) -> str:
        return canonical_json(
            {
                "v": HASH_VERSION,
                "job_uuid": self.job_uuid,
                "seq": self.seq,
                "uuid": self.uuid,
                "name": self.name,
                "from_state": self.from_state,
                "to_state": self.to_state,
                "timestamp": format_timestamp(self.timestamp),
                "data": self.data,
                "source": self.source,
                "idempotency_key": self.idempotency_key,
                "prev_hash": self.prev_hash,
            }
        )

    def digest(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ChainCheck:
    valid: bool
    checked: int
    first_bad_seq: int
    reason: str


class ChainVerifier:
    """Checks entries fed in seq order: contiguous seqs, links and hashes all match."""

    def __init__(self) -> None:
        self._previous_hash = ""
        self.checked = 0

    def feed(self, entry: Entry, stored_hash: str) -> ChainCheck | None:
        """None while the chain holds; the failure at the first entry that breaks it."""
        expected_seq = self.checked + 1
        if entry.seq != expected_seq:
            return ChainCheck(
                False, self.checked, expected_seq, f"expected seq {expected_seq}, found {entry.seq}"
            )
        if entry.prev_hash != self._previous_hash:
            return ChainCheck(
                False, self.checked, entry.seq, "prev_hash does not match the previous entry's hash"
            )
        if entry.digest() != stored_hash:
            return ChainCheck(False, self.checked, entry.seq, "hash does not match the entry's contents")
        self._previous_hash = stored_hash
        self.checked += 1
        return None

    def result(self) -> ChainCheck:
        return ChainCheck(True, self.checked, 0, "")


def verify_chain(entries: Iterable[tuple[Entry, str]]) -> ChainCheck:
    """Check (entry, stored hash) pairs in seq order."""
    verifier = ChainVerifier()
    for entry, stored_hash in entries:
        failure = verifier.feed(entry, stored_hash)
        if failure is not None:
            return failure
    return verifier.result()


async def verify_chain_async(entries: AsyncIterable[tuple[Entry, str]]) -> ChainCheck:
    """``verify_chain`` over a stream, so that a long history is never held in memory at once."""
    verifier = ChainVerifier()
    async for entry, stored_hash in entries:
        failure = verifier.feed(entry, stored_hash)
        if failure is not None:
            return failure
    return verifier.result()
