"""Who holds a data directory, and what a run that ended without stopping its database left behind
(storage/embedded_run.py): the lock names its holder to a second owner, goes with its holder, and a
database still running on the store with nobody holding the lock is stopped before a new one starts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

from pipelinejobs_server.storage import embedded_run
from pipelinejobs_server.storage.embedded import EXECUTABLE, DataDirectoryBusy, EmbeddedDatabase
from pipelinejobs_server.storage.embedded_run import RunLock


def test_a_second_owner_is_told_who_holds_the_directory(tmp_path: Path) -> None:
    first = EmbeddedDatabase(tmp_path)
    first.claim()
    try:
        record = embedded_run.holder(tmp_path)
        assert record is not None
        assert record.pid == os.getpid()
        with pytest.raises(DataDirectoryBusy, match=rf"in use by another process, pid {os.getpid()} \("):
            EmbeddedDatabase(tmp_path).claim()
    finally:
        first.stop()
    assert embedded_run.holder(tmp_path) is None, "a clean stop lets the directory go"
    second = EmbeddedDatabase(tmp_path)
    second.claim()  # and the next owner takes it
    second.stop()


def test_the_lock_goes_with_its_holder_however_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from pathlib import Path
                from pipelinejobs_server.storage.embedded_run import RunLock
                RunLock(Path({str(tmp_path)!r})).acquire()
                print("held", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        record = embedded_run.holder(tmp_path)
        assert record is not None
        assert record.pid == holder.pid
        holder.kill()
        holder.wait()
        # What it wrote is still in the file, but nobody holds the lock: not in use.
        assert embedded_run.holder(tmp_path) is None
        lock = RunLock(tmp_path)
        lock.acquire()
        lock.release()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
        holder.stdout.close()  # type: ignore[union-attr]


@pytest.mark.slow  # a database process of its own
def test_a_database_left_running_on_the_store_is_stopped_before_a_new_one_starts(tmp_path: Path) -> None:
    orphan = EmbeddedDatabase(tmp_path)
    orphan.start()
    left = orphan.process
    assert left is not None
    # What a run that ended without stopping its database leaves: the process, and nobody holding the lock.
    orphan.process = None
    orphan.stop()
    assert left.poll() is None
    assert embedded_run.leftovers(EXECUTABLE, tmp_path / "db") == [left.pid]
    try:
        with EmbeddedDatabase(tmp_path) as database:
            assert left.wait(timeout=30) is not None, "the leftover was stopped"
            assert embedded_run.leftovers(EXECUTABLE, tmp_path / "db") == [database.process.pid]  # type: ignore[union-attr]
            client: MongoClient[dict[str, object]] = MongoClient(database.uri, serverSelectionTimeoutMS=5000)
            with client:
                client.pj.things.insert_one({"_id": "after"})
    finally:
        if left.poll() is None:
            left.kill()
            left.wait()


@pytest.mark.slow  # a database process of its own
def test_the_database_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import time
                from pathlib import Path
                from pipelinejobs_server.storage.embedded import EmbeddedDatabase
                database = EmbeddedDatabase(Path({str(tmp_path)!r}))
                database.start()
                print(database.process.pid, flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert owner.stdout is not None
        pid = int(owner.stdout.readline())
        assert embedded_run.leftovers(EXECUTABLE, tmp_path / "db") == [pid]
        owner.kill()  # SIGKILL: no clean-up of its own
        owner.wait()
        deadline = time.monotonic() + 20
        while embedded_run.leftovers(EXECUTABLE, tmp_path / "db") and time.monotonic() < deadline:
            time.sleep(0.05)
        assert embedded_run.leftovers(EXECUTABLE, tmp_path / "db") == []
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.wait()
        owner.stdout.close()  # type: ignore[union-attr]
        for pid in embedded_run.leftovers(EXECUTABLE, tmp_path / "db"):
            os.kill(pid, 9)
