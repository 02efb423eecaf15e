"""The service layer as the API layer is given it: built by the composition root (app.py), so that no
handler constructs a store or a service, and tests can build the same bundle around other parts."""

from __future__ import annotations

from dataclasses import dataclass

from .counting import JobCounting
from .credentials import Credentials
from .events import Events
from .feed import EventFeed
from .jobs import Jobs
from .listing import JobListing
from .pipelines import Pipelines
from .provenance import Provenance
from .watching import JobWatcher


@dataclass(frozen=True)
class Services:
    credentials: Credentials
    pipelines: Pipelines
    jobs: Jobs
    events: Events
    listing: JobListing
    counting: JobCounting
    watcher: JobWatcher
    provenance: Provenance
    feed: EventFeed
