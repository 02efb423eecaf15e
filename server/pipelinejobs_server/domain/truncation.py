"""What the rejected-events log keeps of a refused event's ``data``: all of it up to a size, beyond that a
stand-in that says how large it was, its hash and how it began (ADR 011).

The log is for operators to see what arrived; a refusal is not applied, so its payload need not be kept
whole, and keeping it whole let any token holder grow the log by 64 KiB a call.
"""

from __future__ import annotations

import hashlib
from typing import Any

from .canonical import canonical_json


def truncated(data: dict[str, Any], max_bytes: int) -> dict[str, Any]:
    """``data`` itself if its canonical JSON fits in ``max_bytes``; else ``{"truncated": true, "bytes": …,
    "sha256": …, "head": …}``: the size and SHA-256 of the canonical JSON, and as much of its beginning as
    keeps the stand-in within ``max_bytes`` (given at least the ~110 bytes of the stand-in's own fields)."""
    text = canonical_json(data)
    encoded = text.encode("utf-8")
    if len(encoded) <= max_bytes:
        return data
    head = text[:max_bytes]
    while True:
        stand_in = {
            "truncated": True,
            "bytes": len(encoded),
            "sha256": hashlib.sha256(encoded).hexdigest(),
            "head": head,
        }
        over = len(canonical_json(stand_in).encode("utf-8")) - max_bytes
        if over <= 0 or not head:
            return stand_in
        # Each character dropped takes at least one byte with it (more when it is escaped or not ASCII).
        head = head[: max(len(head) - over, 0)]
