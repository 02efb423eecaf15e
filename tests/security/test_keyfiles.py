"""F13: an existing key file was trusted whatever its mode, owner or symlink, the ``up`` banner always
said "mode 0600", and a configured key of one character was accepted. Now such files are refused with
the file and the fault named, the banner shows the real mode, and every key needs 128 bits."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipelinejobs_server.cli import up
from pipelinejobs_server.keyfiles import load_or_create
from pipelinejobs_server.settings import Settings, SettingsError

KEY = "Zm9vYmFyLWEtc2VjcmV0LWtleS0xMjM0NTY3ODk"


def key_file(path: Path, mode: int, text: str = KEY) -> Path:
    path.write_text(text + "\n")
    path.chmod(mode)
    return path


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o620, 0o602, 0o666, 0o644], ids=lambda mode: f"{mode:04o}")
def test_a_key_file_others_may_read_or_write_is_refused(tmp_path: Path, mode: int) -> None:
    """F13: group or world read/write bits on a key file: refused, naming the file and its mode."""
    path = key_file(tmp_path / "admin.key", mode)
    with pytest.raises(SettingsError) as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)
    assert f"{mode:04o}" in str(caught.value)
    assert KEY not in str(caught.value)
    assert stat.S_IMODE(path.stat().st_mode) == mode, "the file is left as it was"


def test_a_symlinked_key_file_is_refused(tmp_path: Path) -> None:
    """F13: a symlink is not followed (the report read /etc/hostname as a key)."""
    target = key_file(tmp_path / "elsewhere", 0o600)
    link = tmp_path / "admin.key"
    link.symlink_to(target)
    with pytest.raises(SettingsError, match="symbolic link") as caught:
        load_or_create(link)
    assert str(link) in str(caught.value)


def test_a_dangling_symlink_is_refused_not_replaced(tmp_path: Path) -> None:
    """F13: a link to nowhere is not a missing file: writing a key through it would put it where it points."""
    link = tmp_path / "admin.key"
    link.symlink_to(tmp_path / "nowhere")
    with pytest.raises(SettingsError, match="symbolic link"):
        load_or_create(link)
    assert not (tmp_path / "nowhere").exists()


def test_a_key_file_of_another_user_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F13: a key file owned by someone else (here: the process runs as another uid) is refused."""
    path = key_file(tmp_path / "admin.key", 0o600)
    owner = path.stat().st_uid
    monkeypatch.setattr(os, "geteuid", lambda: owner + 1)
    with pytest.raises(SettingsError, match=f"owned by uid {owner}") as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)


def test_a_short_key_in_a_file_is_refused(tmp_path: Path) -> None:
    """F13: a key file holding fewer than 22 characters (128 bits) is refused."""
    path = key_file(tmp_path / "admin.key", 0o600, "a")
    with pytest.raises(SettingsError, match="at least 22 characters") as caught:
        load_or_create(path)
    assert str(path) in str(caught.value)


def test_the_banner_shows_the_real_mode(tmp_path: Path) -> None:
    """F13: the banner said "(mode 0600)" whatever the file's mode was."""
    key_file(tmp_path / "admin.key", 0o400)
    _, notes = up._keys(Settings(), tmp_path)
    assert f"admin key: {tmp_path / 'admin.key'} (mode 0400)" in notes
    assert f"client key: {tmp_path / 'client.key'} (mode 0600)" in notes


@pytest.mark.parametrize("variable", ["PIPELINEJOBS_ADMIN_KEY", "PIPELINEJOBS_CLIENT_KEYS"])
@pytest.mark.parametrize("short", ["Q-tiny-key", "Q" * 21])
def test_configured_keys_need_128_bits(variable: str, short: str) -> None:
    """F13: ``PIPELINEJOBS_ADMIN_KEY=x`` was accepted; keys shorter than 22 characters are refused."""
    with pytest.raises(SettingsError, match=variable) as caught:
        Settings.from_environ({variable: f"{KEY},{short}"})
    assert short not in str(caught.value).replace(variable, ""), "the key itself is never printed"
    assert Settings.from_environ({variable: "a" * 22}), "22 characters of base64url carry 132 bits"
