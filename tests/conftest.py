"""Fixtures: one real embedded database per test session; a fresh database name, server, stubs, client and
direct database access per test; a port that refuses connections; and the callback shim in front of a
server of its own per test module."""

from __future__ import annotations

import logging
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from pipelinejobs_client import JobsClient
from pipelinejobs_server.shim import ShimSettings
from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import ServerThread, ShimThread, start_grpc_server, test_settings
from tests.support import CALLBACK_KEY_SECRET, CLIENT_KEY, Stubs, stubs


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Commands run in-process (``main([...])``) configure logging for the whole process, as a program
    does: its stderr handler would print every later test's server logs into their captured stderr. Put
    the root logger back as the test found it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


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
def client(server: ServerThread) -> Iterator[JobsClient]:
    with JobsClient(server.address, api_key=CLIENT_KEY) as jobs:
        yield jobs


@pytest.fixture
def mongo(embedded: EmbeddedDatabase) -> Iterator[MongoClient[dict[str, Any]]]:
    """A plain pymongo client of the embedded database, for changes made behind the server's back (the
    way a hand edit, a bad migration or a crash would make them) and for reading what it stored."""
    client: MongoClient[dict[str, Any]] = MongoClient(embedded.uri, tz_aware=True)
    yield client
    client.close()


@pytest.fixture
def db(mongo: MongoClient[dict[str, Any]], database_name: str) -> Database[dict[str, Any]]:
    """The test's own database (the one ``server`` serves), through ``mongo``."""
    return mongo[database_name]


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port on 127.0.0.1 that refuses every connection at once: bound for the whole test, so nothing
    else can take it, but never listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.fixture
def output_dir(request: pytest.FixtureRequest) -> Path:
    path = Path("test-output") / str(request.node.name)
    path.mkdir(parents=True, exist_ok=True)
    return path


# The shim and its gRPC server serve a whole test module (the shim tests and the shim fuzz): each test makes
# jobs of its own, so they never see each other's.


@pytest.fixture(scope="module")
def shim_server(embedded: EmbeddedDatabase) -> Iterator[ServerThread]:
    server = start_grpc_server(embedded)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def shim(shim_server: ServerThread) -> Iterator[ShimThread]:
    shim = ShimThread(
        ShimSettings(server=shim_server.address, callback_key_secret=CALLBACK_KEY_SECRET)
    ).start()
    yield shim
    shim.stop()


@pytest.fixture(scope="module")
def shim_jobs(shim_server: ServerThread) -> Iterator[JobsClient]:
    with JobsClient(shim_server.address, api_key=CLIENT_KEY) as client:
        yield client


@pytest.fixture(scope="module")
def shim_pipeline(shim_jobs: JobsClient) -> str:
    return shim_jobs.register_pipeline("fcs-etl", ["fcs-etl@0.4.0u2"]).pipeline.uuid
