"""``python -m pipelinejobs_client.cli``: the ``pipelinejobs`` command without its script."""

from pipelinejobs_client.cli import main

raise SystemExit(main())
