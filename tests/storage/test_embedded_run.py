"""Who holds a data directory, and what a run that ended without stopping its database left behind
(storage/embedded_run.py): the lock names its holder to a second owner, goes with its holder, and a
database still running on the store with nobody holding the lock is stopped before a new one starts."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from pymongo import MongoClient

import pipelinejobs_server
from pipelinejobs_server.storage import embedded_run
from pipelinejobs_server.storage.embedded import EXECUTABLE, DataDirectoryBusy, EmbeddedDatabase
from pipelinejobs_server.storage.embedded_run import RunLock

SERVER_PACKAGE = Path(pipelinejobs_server.__file__).parent


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


def test_no_python_runs_between_fork_and_exec() -> None:
    # A preexec_fn makes subprocess fork for real and run Python in the child: with gRPC threads busy in
    # the parent (a test restarting the database under load), the child crashed in gRPC's fork handlers
    # ("Check failed: next_worker->initialized_cv"). The death signal is set by die_with_parent.py instead.
    offenders = [
        f"{path.name}:{node.lineno}"
        for path in SERVER_PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.keyword) and node.arg == "preexec_fn"
    ]
    assert offenders == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_wrapper_runs_nothing_for_a_parent_that_is_gone(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    command = embedded_run.dying_with_parent(["/usr/bin/touch", str(marker)])
    assert command[-2:] == ["/usr/bin/touch", str(marker)]
    assert subprocess.run(command, check=False, timeout=30).returncode == 0
    assert marker.exists(), "with its parent alive, the program runs"
    marker.unlink()
    pid_index = command.index(str(os.getpid()))
    orphaned = [
        *command[:pid_index],
        "1",
        *command[pid_index + 1 :],
    ]  # "started" by a parent it does not have
    ran = subprocess.run(orphaned, capture_output=True, text=True, check=False, timeout=30)
    assert ran.returncode == 1
    assert "has already ended" in ran.stderr
    assert not marker.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_wrapped_program_dies_with_a_many_threaded_owner_whatever_it_does_with_sigterm(
    tmp_path: Path,
) -> None:
    # The owner's death reaches the program as one signal per thread it is handed to; a program that
    # catches SIGTERM (as the database does, with a handler that deadlocks when it runs twice) must die
    # all the same.
    stubborn = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
    owner = textwrap.dedent(f"""
        import subprocess, sys, threading, time
        from pipelinejobs_server.storage import embedded_run
        for _ in range(8):
            threading.Thread(target=time.sleep, args=(600,), daemon=True).start()
        child = subprocess.Popen(embedded_run.dying_with_parent([sys.executable, "-c", {stubborn!r}]))
        print(child.pid, flush=True)
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", owner], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        child = Path("/proc") / process.stdout.readline().strip()
        deadline = time.monotonic() + 30
        while "SIG_IGN" not in (child / "cmdline").read_text() and time.monotonic() < deadline:
            time.sleep(0.05)  # until the wrapper has become the program and ignores SIGTERM
        time.sleep(0.5)
    finally:
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()
    assert wait_until_ended(child), "the program outlived its owner"


def wait_until_ended(process: Path, timeout_s: float = 30) -> bool:
    """Whether the process at ``/proc/<pid>`` is gone (or a zombie) within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if (process / "stat").read_text().rpartition(")")[2].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False
