"""Who is using a data directory of the embedded database, and what a run that crashed left behind.

- **The lock** (``<data dir>/run.lock``, ``fcntl.flock``): taken before anything else by whoever starts
  the embedded database (``up``, the tests), held until it stops. The kernel drops it when its holder
  dies, however it dies, so it can never go stale. A second start fails at once and names the holder,
  instead of waiting for WiredTiger to refuse a store another process has open.
- **The run record**, the lock file's content: the holder's pid and command, and once the database
  answers, its pid and its URI without the password. ``pipelinejobs doctor --data-dir`` finds the
  database through it (its port changes on every start); the record is emptied at a clean stop.
- **Leftovers**: a database process still running on the store while nobody holds the lock lost its
  owner (a version that let it outlive its owner, or a crash between fork and ``die_with_parent``). It is
  found by its command line (``--storage-path``) and stopped before a new one starts.
- **Dying with the owner**: ``dying_with_parent`` wraps the database's command in die_with_parent.py,
  which makes the kernel SIGKILL the database when the thread that started it ends, whatever ends it,
  SIGKILL included (not SIGTERM: see there). The database keeps a session of its own, so a
  terminal's Ctrl-C reaches its owner first, which stops it. Linux only (``PR_SET_PDEATHSIG``);
  elsewhere the lock and the leftover check still hold.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import itertools
import json
import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

LOCK_FILE = "run.lock"
PROC = Path("/proc")


@dataclass(frozen=True)
class RunRecord:
    """What the lock's holder says about itself."""

    pid: int
    command: str
    database_pid: int | None = None
    uri: str | None = None  # without the password: the record is a file others may be shown


class DataDirectoryInUse(RuntimeError):
    def __init__(self, data_dir: Path, holder: RunRecord | None) -> None:
        who = f"pid {holder.pid} ({holder.command})" if holder else "a process that is still starting"
        super().__init__(
            f"{data_dir} is in use by another process, {who}: stop it (Ctrl-C where it runs) "
            "or give this one another --data-dir"
        )
        self.holder = holder


def this_command() -> str:
    """How this process was started, for others to read: ``pipelinejobs up --data-dir …``."""
    first = Path(sys.argv[0]) if sys.argv and sys.argv[0] else Path(sys.executable)
    name = first.parent.name if first.name == "__main__.py" else first.name  # python -m package
    return " ".join([name, *sys.argv[1:]])[:300]


class RunLock:
    """The data directory's lock, and the run record written into it."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.path = data_dir / LOCK_FILE
        self._descriptor: int | None = None

    @property
    def held(self) -> bool:
        return self._descriptor is not None

    def acquire(self) -> None:
        """Take the lock or raise ``DataDirectoryInUse``; a no-op when this object holds it."""
        if self._descriptor is not None:
            return
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            # A holder writes its record right after taking the lock: an empty record is worth a
            # moment's wait before the holder is reported as unknown (or a doctor's probe let go).
            for _ in range(20):
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    holder = _read(descriptor)
                    if holder is not None and _alive(holder.pid):  # not what a crashed run left
                        raise DataDirectoryInUse(self.data_dir, holder) from None
                    time.sleep(0.05)
            else:
                raise DataDirectoryInUse(self.data_dir, None)
        except BaseException:
            os.close(descriptor)
            raise
        self._descriptor = descriptor
        self.record(RunRecord(os.getpid(), this_command()))

    def record(self, record: RunRecord) -> None:
        if self._descriptor is None:
            raise RuntimeError("the run lock is not held")
        _write(self._descriptor, json.dumps(asdict(record)).encode())

    def release(self) -> None:
        descriptor, self._descriptor = self._descriptor, None
        if descriptor is None:
            return
        with contextlib.suppress(OSError):
            _write(descriptor, b"")  # a clean stop leaves no record
        os.close(descriptor)  # and the lock goes with the descriptor


def holder(data_dir: Path) -> RunRecord | None:
    """The record of whoever holds the lock of ``data_dir`` now; None when nobody does."""
    try:
        descriptor = os.open(data_dir / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(descriptor) or RunRecord(0, "still starting")
        return None  # the shared lock was free: nobody holds it (closing lets it go)
    finally:
        os.close(descriptor)


def _write(descriptor: int, content: bytes) -> None:
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, content, 0)


def _read(descriptor: int) -> RunRecord | None:
    try:
        fields = json.loads(os.pread(descriptor, 4096, 0) or b"null")
        return RunRecord(**fields) if isinstance(fields, dict) else None
    except (OSError, ValueError, TypeError):
        return None  # being written, or not ours: as good as no record


# -- leftovers --------------------------------------------------------------------------------------------


def leftovers(executable: str, storage_path: Path) -> list[int]:
    """This user's live processes of ``executable`` running on ``storage_path``."""
    if not PROC.is_dir():
        return []
    found = []
    wanted = str(storage_path)
    for entry in PROC.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid() or _is_zombie(entry):
                continue
            arguments = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:
            continue  # ended while we looked, or not ours to read
        runs_it = any(Path(argument).name == executable for argument in arguments)
        on_store = any(
            flag == "--storage-path" and value == wanted for flag, value in itertools.pairwise(arguments)
        )
        if runs_it and on_store:
            found.append(int(entry.name))
    return found


def end(pids: list[int], timeout_s: float = 15.0) -> None:
    """SIGTERM (a clean WiredTiger shutdown), then SIGKILL for what is still running after ``timeout_s``."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sent)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            pids = [pid for pid in pids if _alive(pid)]
            if not pids:
                return
            time.sleep(0.05)


def _alive(pid: int) -> bool:
    entry = PROC / str(pid)
    if PROC.is_dir():
        try:
            return not _is_zombie(entry)
        except OSError:
            return False
    try:
        os.kill(pid, 0)
    except OSError as error:
        return error.errno == errno.EPERM
    return True


def _is_zombie(entry: Path) -> bool:
    # The state follows the command name, which is in parentheses and may itself hold spaces.
    return (entry / "stat").read_text().rpartition(")")[2].split()[0] == "Z"


# -- dying with the owner ---------------------------------------------------------------------------------


def dying_with_parent(command: list[str]) -> list[str]:
    """``command`` run so that it is SIGKILLed when the thread that starts it ends (for ``up``, its main
    thread: the process); ``command`` itself where the kernel offers no such thing."""
    if not sys.platform.startswith("linux"):
        return command
    # -I -S: the standard library alone, whatever the environment says; the file, not the package.
    wrapper = Path(__file__).with_name("die_with_parent.py")
    return [sys.executable, "-I", "-S", str(wrapper), str(os.getpid()), *command]
