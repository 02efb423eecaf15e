"""Fixtures: one real embedded database per test session, a fresh database name and server per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelinejobs_server.storage.embedded import EmbeddedDatabase

from .support import ServerThread, Stubs, stubs, test_settings


@pytest.fixture(scope="session")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedDatabase]:
    database = EmbeddedDatabase(tmp_path_factory.mktemp("secantus"))
    database.start()
    yield database
    database.stop()


@pytest.fixture
def mongodb_uri(embedded: EmbeddedDatabase) -> str:
    return embedded.uri


@pytest.fixture
def database_name() -> str:
    # A database of its own per test: tests never see each other's jobs.
    return f"test_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def server(mongodb_uri: str, database_name: str) -> Iterator[ServerThread]:
    thread = ServerThread(test_settings(mongodb_uri, database_name)).start()
    yield thread
    thread.stop()


@pytest.fixture
def api(server: ServerThread) -> Iterator[Stubs]:
    with stubs(server.address) as s:
        yield s


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    path = Path("test-output") / str(request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    return path
