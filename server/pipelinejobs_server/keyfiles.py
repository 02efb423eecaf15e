"""API key files for the quick start: generated once, readable only by their owner."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def load_or_create(path: Path) -> str:
    """The key stored at ``path``; a new random key (mode 0600) if there is none yet."""
    if path.exists():
        key = path.read_text().strip()
        if key:
            return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    # O_EXCL + 0600 at creation: the key is never readable by others, not even for an instant.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # an empty file left by an interrupted start
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key
