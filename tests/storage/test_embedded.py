"""The embedded database launcher and the storage settings that its measured traps call for (DESIGN 9)."""

from __future__ import annotations

import ast
import stat
import sys
from pathlib import Path

import pytest
from pymongo import MongoClient

import pipelinejobs_server
from pipelinejobs_server.storage.database import DURABLE, Database
from pipelinejobs_server.storage.embedded import EmbeddedDatabase, EmbeddedDatabaseError, embedded_uri

SERVER_PACKAGE = Path(pipelinejobs_server.__file__).parent


def test_the_servers_client_has_retryable_writes_off_on_the_embedded_database() -> None:
    # With retryable writes on, SecantusDB slows from ~1,500 to ~60 writes/s after ~8,000 writes
    # (measured; DESIGN 9). Checked on the client the server really builds, not just on the URI.
    database = Database(embedded_uri("127.0.0.1", 1), "unused")
    assert database.client.options.retry_writes is False
    # Production URIs keep the driver's default (retryable writes on).
    production = Database("mongodb://db.example:27017/?replicaSet=rs0", "unused")
    assert production.client.options.retry_writes is True


def test_state_changing_writes_wait_for_the_journal() -> None:
    # Writes acknowledged with w=1 alone were lost by a SIGKILL of the database; none with j=true.
    assert DURABLE.document.get("j") is True
    database = Database(embedded_uri("127.0.0.1", 1), "unused")
    for collection in vars(database.collections).values():
        assert collection.write_concern.document.get("j") is True, collection.name


def test_no_find_one_and_update_in_the_server() -> None:
    # find_one_and_update scans the whole collection on the embedded database (70 ms at 10,000
    # documents, against ~1 ms for update_one with the same filter): the write path must not use it.
    offenders = []
    for path in SERVER_PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("find_one_and_"):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_launcher_starts_answers_ping_persists_and_stops(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path)
    uri = database.start()
    assert database.port
    assert database.host == "127.0.0.1"
    client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=5000)
    try:
        client.pj.things.insert_one({"_id": "kept"})
    finally:
        client.close()
    database.stop()
    assert database.process is None

    again = EmbeddedDatabase(tmp_path)
    with again:
        client = MongoClient(again.uri, serverSelectionTimeoutMS=5000)
        try:
            assert client.pj.things.find_one({"_id": "kept"}) == {"_id": "kept"}
        finally:
            client.close()
    assert (tmp_path / "db").is_dir()


def test_missing_executable_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(sys, "executable", str(tmp_path / "python"))
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedDatabaseError, match="MONGODB_URI"):
        EmbeddedDatabase(tmp_path).start()


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_data_directory_is_created(tmp_path: Path) -> None:
    target = tmp_path / "nested" / "data"
    with EmbeddedDatabase(target) as database:
        assert target.is_dir()
        assert database.log_path.parent == target
    assert not stat.S_ISLNK(target.stat().st_mode)
