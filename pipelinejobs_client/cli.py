"""The ``pipelinejobs`` command.

Server commands (``up``, ``serve``, ``health``) need the server extra and are delegated to it; the
client library needs only gRPC and protobuf.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

SERVER_COMMANDS = ("up", "serve", "health")


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    try:
        from pipelinejobs_server.cli import main as server_main
    except ImportError as error:
        hint = "pip install 'pipelinejobs[server,embedded]'"
        print(f"error: the server commands need the server extra ({hint}): {error}", file=sys.stderr)
        return 2
    return server_main(arguments)


if __name__ == "__main__":
    raise SystemExit(main())
