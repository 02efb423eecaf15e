"""The read-only job dashboard under /ui/: a jobs table, one page per job with its state machine and live
history, and its provenance — server-rendered templates and a little plain JavaScript, no build step.

It reads only through the gRPC API (``AsyncJobsClient``), like the rest of the shim, with the user's own
API key (access.py). docs/dashboard.md is the user's guide.
"""

from .dashboard import Dashboard

__all__ = ["Dashboard"]
