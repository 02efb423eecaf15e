"""The read-only job dashboard under /ui/: a jobs table, one page per job with its state machine and live
history, and its provenance — server-rendered templates and a little plain JavaScript, no build step.

It reads only through the gRPC API (``AsyncJobsClient``), with the user's own API key (access.py), and is
an app of its own (dashboard.py ``create_app``), apart from the public callback shim. docs/dashboard.md is
the user's guide.
"""

from .dashboard import PREFIX, Dashboard, create_app
from .settings import DashboardSettings

__all__ = ["PREFIX", "Dashboard", "DashboardSettings", "create_app"]
