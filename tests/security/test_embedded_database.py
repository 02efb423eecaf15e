"""F8: the embedded database of ``up``, the tests and the benchmarks, as another local user sees it.

The review found it open on 127.0.0.1 to any client and its data directory readable by every user: anyone
on the machine could read every job, or plant a token hash and then send events with the planted token.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymongo import MongoClient
from pymongo.errors import OperationFailure

from pipelinejobs_server.domain.tokens import hash_secret
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import ServerThread
from tests.support import Stubs, create_job, error_info, register_pipeline, send

PLANTED = "planted-token-0123456789abcdefghijklmnop"


@pytest.fixture
def stranger(embedded: EmbeddedDatabase) -> Iterator[MongoClient[dict[str, Any]]]:
    """A client of another local user: it knows the port (any user can list listening sockets), not the
    password."""
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://{embedded.host}:{embedded.port}/?directConnection=true", serverSelectionTimeoutMS=5000
    )
    yield client
    client.close()


def test_a_client_without_the_password_reads_nothing(
    stranger: MongoClient[dict[str, Any]], api: Stubs, database_name: str
) -> None:
    """F8: the review listed and read every collection with no credentials at all."""
    create_job(api, register_pipeline(api))
    with pytest.raises(OperationFailure) as listing:
        stranger.list_database_names()
    assert listing.value.code == 13  # Unauthorized
    with pytest.raises(OperationFailure):
        stranger[database_name].jobs.find_one()


def test_a_planted_token_hash_is_refused_and_so_is_the_token(
    stranger: MongoClient[dict[str, Any]], server: ServerThread, api: Stubs, database_name: str
) -> None:
    """F8, the review's reproduction: push a token hash of our own into a job's record straight in the
    database, then send ``run`` with that token. It was applied."""
    job = create_job(api, register_pipeline(api)).job.uuid
    planted = {"h": hash_secret(PLANTED), "exp": datetime.now(UTC) + timedelta(days=365)}
    with pytest.raises(OperationFailure):
        stranger[database_name].jobs.update_one({"_id": job}, {"$push": {"tokens": planted}})
    with pytest.raises(grpc.RpcError) as refused:
        send(api, job, "run", token=PLANTED)
    assert error_info(refused.value).reason == "INVALID_TOKEN"


def loose(path: Path) -> list[str]:
    """Everything under ``path`` (itself included) that its group or other users may read, write or enter."""
    found = []
    for entry in [path, *path.rglob("*")]:
        mode = entry.lstat().st_mode
        if stat.S_IMODE(mode) & 0o077:
            found.append(f"{entry.relative_to(path.parent)} {stat.filemode(mode)}")
    return found


@pytest.mark.slow  # a database process of its own (or all of `up`): not in `make unit`
def test_the_data_directory_and_its_files_are_the_owners_alone(tmp_path: Path) -> None:
    """F8: the review found the data directory and the database's directory 0755, its files 0644. The
    directory here exists before the first start with loose modes, as one made by hand, by an older
    version or by the key files of ``up`` under the default umask would."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    os.chmod(data_dir, 0o755)  # noqa: S103 - the loose directory the review found
    with EmbeddedDatabase(data_dir) as database:
        client: MongoClient[dict[str, Any]] = MongoClient(database.uri, serverSelectionTimeoutMS=5000)
        try:
            client.pj.things.insert_one({"_id": "written"})
        finally:
            client.close()
        assert loose(data_dir) == []
    assert loose(data_dir) == []
