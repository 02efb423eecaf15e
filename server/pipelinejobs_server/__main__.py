"""``python -m pipelinejobs_server up|serve|shim|dashboard|doctor``: the ``pipelinejobs`` command, which finds
the server's commands through their entry points like any installed command."""

from pipelinejobs_client.cli import main

raise SystemExit(main())
