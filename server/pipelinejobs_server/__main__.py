"""``python -m pipelinejobs_server up|serve|health``."""

from .cli import main

raise SystemExit(main())
