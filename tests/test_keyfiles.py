"""Quick-start API key files (keyfiles.py): created once with mode 0600, reused, regenerated if blank.

What they refuse (loose modes, other owners, symlinks, short keys) is in tests/security/test_keyfiles.py."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from pipelinejobs_server.keyfiles import load_or_create, mode_of
from pipelinejobs_server.settings import SettingsError

URL_SAFE = re.compile(r"^[A-Za-z0-9_-]+$")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_creates_a_key_readable_only_by_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    key = load_or_create(path)
    assert mode(path) == 0o600
    assert path.read_text() == key + "\n"


def test_key_is_long_and_url_safe(tmp_path: Path) -> None:
    key = load_or_create(tmp_path / "admin.key")
    assert URL_SAFE.match(key)
    assert len(key) * 6 >= 256  # token_urlsafe(32): 256 random bits


def test_second_call_returns_the_same_key(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    first = load_or_create(path)
    assert load_or_create(path) == first
    assert mode(path) == 0o600


def test_existing_key_is_read_not_replaced(tmp_path: Path) -> None:
    # The operator's own key, as safe as a generated one: 0600, theirs, 22 characters or more.
    path = tmp_path / "admin.key"
    path.write_text("  my-own-key-0123456789abc  \n")
    path.chmod(0o600)
    assert load_or_create(path) == "my-own-key-0123456789abc"
    assert path.read_text() == "  my-own-key-0123456789abc  \n"


def test_a_generated_key_passes_its_own_checks(tmp_path: Path) -> None:
    """What ``up`` generates is accepted on the next start: 0600, this user's, 43 characters."""
    path = tmp_path / "client.key"
    key = load_or_create(path)
    assert load_or_create(path) == key
    assert path.stat().st_uid == os.geteuid()
    assert mode_of(path) == 0o600


def test_a_blank_file_of_loose_mode_is_replaced_not_refused(tmp_path: Path) -> None:
    """A blank file holds nothing to leak or trust (an interrupted start): a fresh 0600 key replaces it."""
    path = tmp_path / "admin.key"
    path.write_text("\n")
    path.chmod(0o666)
    key = load_or_create(path)
    assert path.read_text() == key + "\n"
    assert mode(path) == 0o600


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    os.mkfifo(path, 0o600)
    with pytest.raises(SettingsError, match="not a regular file"):
        load_or_create(path)


def test_different_files_get_different_keys(tmp_path: Path) -> None:
    assert load_or_create(tmp_path / "a.key") != load_or_create(tmp_path / "b.key")


def test_empty_file_is_regenerated(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    path.write_text("")
    path.chmod(0o644)
    key = load_or_create(path)
    assert key
    assert path.read_text() == key + "\n"
    # The file is created anew, so the loose mode of the empty one does not survive.
    assert mode(path) == 0o600
    assert load_or_create(path) == key


def test_blank_file_is_regenerated(tmp_path: Path) -> None:
    path = tmp_path / "admin.key"
    path.write_text(" \n\n")
    key = load_or_create(path)
    assert URL_SAFE.match(key)
    assert path.read_text() == key + "\n"


def test_missing_directories_are_created(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys" / "admin.key"
    key = load_or_create(path)
    assert path.read_text() == key + "\n"
    assert mode(path) == 0o600
