"""Run a program that the kernel stops (SIGTERM) when the process that started this one ends, however it
ends: ``python die_with_parent.py PARENT_PID PROGRAM [ARGUMENT ...]`` asks for ``PR_SET_PDEATHSIG``, checks
that ``PARENT_PID`` is still its parent, and becomes ``PROGRAM`` (exec: the same pid, the signal kept).

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
    if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_PDEATHSIG) failed: {os.strerror(ctypes.get_errno())}")
    if os.getppid() != parent:
        sys.exit("the process that started this one has already ended")  # no one would stop the program
    os.execv(program[0], program)  # noqa: S606 - the launcher's own command, no shell between


if __name__ == "__main__":
    main(sys.argv)
