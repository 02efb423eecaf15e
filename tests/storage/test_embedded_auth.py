"""The embedded database's user (storage/embedded.py, embedded_user.py): set up on the first start, checked,
kept across restarts, added to a store an older version made, and set up again after an interruption."""

from __future__ import annotations

import secrets
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from pipelinejobs_server.storage import embedded, embedded_user
from pipelinejobs_server.storage.embedded import (
    SETUP_MARKER,
    EmbeddedDatabase,
    EmbeddedDatabaseError,
    embedded_uri,
    find_executable,
    free_port,
)


def connect(uri: str) -> MongoClient[dict[str, Any]]:
    return MongoClient(uri, serverSelectionTimeoutMS=5000)


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_the_first_start_sets_up_a_user_that_later_starts_keep(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "data")
    with database:
        password = database.password
        assert stat.S_IMODE(database.password_path.stat().st_mode) == 0o600
        assert database.password_path.read_text().strip() == password
        assert len(password) >= 43  # token_urlsafe(32): 256 random bits
        assert not (database.data_dir / SETUP_MARKER).exists()
        with connect(database.uri) as client:
            client.pj.things.insert_one({"_id": "kept"})
        wrong = embedded_uri(database.host, database.port, "wrong" + password)
        with connect(wrong) as client, pytest.raises(OperationFailure) as refused:
            client.admin.command("ping")
        assert refused.value.code == 18  # AuthenticationFailed

        # The URI to print names the user, not the password; the doctor adds the password from the file.
        assert password not in database.shown_uri
        assert database.shown_uri.startswith(f"mongodb://pipelinejobs@127.0.0.1:{database.port}/")
        shown: MongoClient[dict[str, Any]] = MongoClient(
            database.shown_uri, password=database.password_path.read_text().strip()
        )
        with shown:
            assert shown.admin.command("ping")["ok"] == 1

    again = EmbeddedDatabase(tmp_path / "data")
    with again, connect(again.uri) as client:
        assert again.password == password
        assert client.pj.things.find_one({"_id": "kept"}) == {"_id": "kept"}


@pytest.mark.slow
def test_a_changed_password_file_is_a_clear_error_not_a_long_wait(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "data")
    database.start()
    database.stop()
    # A well-formed key of the right length, only not the one the store knows.
    database.password_path.write_text(secrets.token_urlsafe(32) + "\n")
    with pytest.raises(EmbeddedDatabaseError, match="refused the password"):
        database.start(timeout_s=30)
    assert database.process is None


@pytest.mark.slow
def test_a_store_without_a_user_from_an_older_version_gets_one(tmp_path: Path) -> None:
    """An older version ran the database without ``--auth``: its store has data but no user, and the data
    directory has no password file. The next start adds the user and keeps the data."""
    data_dir = tmp_path / "data"
    with EmbeddedDatabase(data_dir) as first, connect(first.uri) as client:
        client.pj.things.insert_one({"_id": "old"})
    # What an older version left: the same store, never given a user. Dropping ours stands in for that.
    older = EmbeddedDatabase(data_dir)
    with older, connect(older.uri) as client:
        client.admin.command("dropUser", embedded_user.USER)
    older.password_path.unlink()
    (older.storage_path / "WiredTiger.wt").chmod(0o644)

    upgraded = EmbeddedDatabase(data_dir)
    with upgraded, connect(upgraded.uri) as client:
        assert client.pj.things.find_one({"_id": "old"}) == {"_id": "old"}
    assert stat.S_IMODE((upgraded.storage_path / "WiredTiger.wt").stat().st_mode) == 0o600
    assert not (data_dir / SETUP_MARKER).exists()


@pytest.mark.slow
def test_an_interrupted_set_up_is_done_again(tmp_path: Path) -> None:
    """A first start stopped between creating the user and checking the store leaves its marker: the next
    start sets the user up again (with the same password) and checks the store before using it."""
    data_dir = tmp_path / "data"
    with EmbeddedDatabase(data_dir) as first:
        password = first.password
    (data_dir / SETUP_MARKER).write_text("new\n")
    with EmbeddedDatabase(data_dir) as again:
        assert again.password == password
    assert not (data_dir / SETUP_MARKER).exists()


@pytest.mark.slow
def test_a_removed_store_is_set_up_again_with_the_kept_password(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with EmbeddedDatabase(data_dir) as first:
        password = first.password
    shutil.rmtree(first.storage_path)
    with EmbeddedDatabase(data_dir) as again, connect(again.uri) as client:
        assert again.password == password
        assert client.admin.command("ping")["ok"] == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "intrusion",
    [
        pytest.param(
            lambda client: client.admin.command("createUser", "intruder", pwd="theirs", roles=["root"]),
            id="a user of its own",
        ),
        pytest.param(lambda client: client.pipelinejobs.jobs.insert_one({"_id": "planted"}), id="data"),
    ],
)
def test_a_new_store_someone_else_used_during_the_set_up_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, intrusion: Any
) -> None:
    """Another local user who connects while the first start runs without ``--auth`` can leave something
    behind. The real database, with the intruder's writes made at that moment (beside our createUser)."""
    create = embedded_user.create

    def create_and_intrude(client: MongoClient[dict[str, Any]], password: str) -> None:
        create(client, password)
        intrusion(client)

    monkeypatch.setattr(embedded_user, "create", create_and_intrude)
    database = EmbeddedDatabase(tmp_path / "data")
    with pytest.raises(EmbeddedDatabaseError, match="removed: another client"):
        database.start()
    assert database.process is None
    assert not database.storage_path.exists()

    monkeypatch.setattr(embedded_user, "create", create)
    with database, connect(database.uri) as client:
        assert client.list_database_names() == ["local"]


@pytest.mark.slow
def test_the_password_goes_only_to_the_process_it_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another local user's server that took the probed port before ours could bind it answers the set-up's
    ping: the launcher sees that the process answering is not its own and sends it no createUser."""
    squatter_port = free_port()
    squatter = subprocess.Popen(
        [
            find_executable(),
            "--host",
            "127.0.0.1",
            "--port",
            str(squatter_port),
            "--storage-path",
            ":memory:",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with connect(embedded_uri("127.0.0.1", squatter_port)) as client:
            client.admin.command("ping")  # waits until it answers
            monkeypatch.setattr(embedded, "free_port", lambda host="127.0.0.1": squatter_port)
            database = EmbeddedDatabase(tmp_path / "data")
            with pytest.raises(EmbeddedDatabaseError, match="answered by another process"):
                database.start()
            assert database.process is None
            assert list(client.admin["system.users"].find()) == [], "the squatter got no user, no password"
    finally:
        squatter.terminate()
        squatter.wait(timeout=30)
