"""API key files for the quick start: generated once, readable only by their owner.

An existing file is used only if it is what this module would have written: a regular file (not a
symbolic link), owned by the user running the server, that nobody else may read or write, holding a key
of at least 128 bits. Anything else is refused with the file and the fault named, never repaired behind
the operator's back: a loose mode means the key may already have been read.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from pathlib import Path

from .domain.tokens import MIN_KEY_LENGTH
from .settings import SettingsError

LOOSE_BITS = stat.S_IRGRP | stat.S_IWGRP | stat.S_IROTH | stat.S_IWOTH


def load_or_create(path: Path) -> str:
    """The key stored at ``path``; a new random key (mode 0600) if there is none yet (or it is empty)."""
    key = _read_checked(path)
    if key:
        return key
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    # O_EXCL + 0600 at creation: the key is never readable by others, not even for an instant.
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # an empty file left by an interrupted start
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key + "\n")
    return key


def mode_of(path: Path) -> int:
    """The permission bits of a key file, as the ``up`` banner shows them."""
    return stat.S_IMODE(path.lstat().st_mode)


def _read_checked(path: Path) -> str:
    """The key in ``path`` ("" when there is no file, or a blank one); SettingsError when it is unsafe."""
    try:
        # O_NOFOLLOW: a symlink fails here rather than being read, and checks and read are on one file.
        # O_NONBLOCK: a FIFO planted in its place is refused below instead of blocking the start.
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except FileNotFoundError:
        return ""
    except OSError as error:
        if error.errno == errno.ELOOP:
            raise SettingsError(f"key file {path} is a symbolic link; refusing to follow it") from None
        raise SettingsError(f"cannot read key file {path}: {error.strerror}") from None
    with os.fdopen(descriptor) as handle:
        status = os.fstat(handle.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise SettingsError(f"key file {path} is not a regular file")
        key = handle.read().strip()
    if not key:
        return ""  # nothing to leak or to trust: replaced by a fresh key (left by an interrupted start)
    _check_owner_and_mode(path, status)
    if len(key) < MIN_KEY_LENGTH:
        raise SettingsError(
            f"key file {path} holds a key of {len(key)} characters; keys need at least "
            f"{MIN_KEY_LENGTH} characters (128 bits as base64url). Remove the file to have one generated"
        )
    return key


def _check_owner_and_mode(path: Path, status: os.stat_result) -> None:
    if status.st_uid != os.geteuid():
        raise SettingsError(
            f"key file {path} is owned by uid {status.st_uid}, not by this user (uid {os.geteuid()}); "
            "refusing a key someone else may have written"
        )
    mode = stat.S_IMODE(status.st_mode)
    if mode & LOOSE_BITS:
        raise SettingsError(
            f"key file {path} has mode {mode:04o}: its group or others may read or write it. "
            f"Run 'chmod 600 {path}' if the key has not leaked, or remove the file for a new one"
        )
