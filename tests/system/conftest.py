"""Fixtures of the system suites: a database of a test's own (to kill and restart), and the server process
with real objects that the bad-input suites aim at. Every test here is marked ``system``, which
``make unit`` leaves out; each module also says what it needs (``slow``, ``fuzz``, ``browser``, ...)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from pipelinejobs_server.storage.embedded import EmbeddedDatabase
from tests.servers import start_server_process
from tests.support import create_job, register_pipeline, send, stubs
from tests.system.bad_input import Snapshot, Target

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before -m deselects anything
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.system)


@pytest.fixture
def own_database(tmp_path: Path) -> Iterator[EmbeddedDatabase]:
    """A database of the test's own: it can be stopped or killed, and started again on the same data and
    the same port (the port it was given at the first start)."""
    database = EmbeddedDatabase(tmp_path / "db")
    database.start()
    yield database
    database.stop()


@pytest.fixture(scope="module")
def target(embedded: EmbeddedDatabase) -> Iterator[Target]:
    """A server process of the module's own with a pipeline, a RUNNING job and a CREATED one to aim at; at
    the end, its log must show no internal error."""
    database = f"test_bad_input_{uuid.uuid4().hex[:12]}"
    server = start_server_process(embedded.uri, database)
    try:
        with stubs(server.address) as api:
            pipeline = register_pipeline(api, "bad-input")
            running = create_job(api, pipeline, sample=["running"])
            send(api, running.job.uuid, "run", token=running.token)
            fresh = create_job(api, pipeline, sample=["fresh"])
        yield Target(
            server,
            database,
            pipeline,
            running.job.uuid,
            running.token,
            fresh.job.uuid,
            fresh.token,
        )
    finally:
        server.terminate()
    log = server.output()
    assert "code=INTERNAL" not in log, log
    assert "Traceback" not in log, log


@pytest.fixture
def snapshot(target: Target, mongo: MongoClient[dict[str, Any]]) -> Snapshot:
    """The target's database, to compare before and after a refused call."""
    return Snapshot(mongo[target.database])
