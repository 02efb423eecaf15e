"""Run a program that the kernel kills (SIGKILL) when the process that started this one ends, however it
ends: ``python die_with_parent.py PARENT_PID PROGRAM [ARGUMENT ...]`` asks for ``PR_SET_PDEATHSIG``, checks
that ``PARENT_PID`` is still its parent, and becomes ``PROGRAM`` (exec: the same pid, the signal kept).

SIGKILL, not SIGTERM: the kernel sends the signal each time the program is handed to another thread of
the dying process, so a multi-threaded owner's death is a burst of them, and the database's own SIGTERM
handler is not re-entrant (a second SIGTERM inside the first deadlocks it on its stop event's lock: seen
in 2 of 4 kills of ``up``, the database then outliving it for good). A SIGKILL cannot be caught, and the
database is built for it (its journal; the fault suites kill it under load and lose nothing).

A program of its own rather than a ``preexec_fn``: Python code between fork and exec makes ``subprocess``
fork for real, and a fork of a process whose gRPC threads are busy can crash the child in gRPC's fork
handlers (seen when a test restarted the database under load). This runs after an ordinary spawn, in a
fresh interpreter, with the standard library alone (it is run by path with ``-I -S``). Linux only.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from typing import NoReturn

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


def main(argv: list[str]) -> NoReturn:
    parent, program = int(argv[1]), argv[2:]
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:
        sys.exit("the process that started this one has already ended")  # no one would stop the program
    os.execv(program[0], program)  # noqa: S606 - the launcher's own command, no shell between


if __name__ == "__main__":
    main(sys.argv)
