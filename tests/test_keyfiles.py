"""Quick-start API key files (keyfiles.py): created once with mode 0600, reused, regenerated if empty."""

from __future__ import annotations

import re
import stat
from pathlib import Path

from pipelinejobs_server.keyfiles import load_or_create

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
    path = tmp_path / "admin.key"
    path.write_text("  my-own-key  \n")
    assert load_or_create(path) == "my-own-key"
    assert path.read_text() == "  my-own-key  \n"


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
