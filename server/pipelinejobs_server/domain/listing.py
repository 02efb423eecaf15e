"""What ListJobs can ask for: filters and an order, independent of the database."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime


class JobOrder(enum.Enum):
    CREATE_TIME_DESC = ("created_at", -1)
    CREATE_TIME_ASC = ("created_at", 1)
    UPDATE_TIME_DESC = ("updated_at", -1)
    UPDATE_TIME_ASC = ("updated_at", 1)

    @property
    def field(self) -> str:
        return self.value[0]

    @property
    def direction(self) -> int:
        return self.value[1]


@dataclass(frozen=True)
class TimeRange:
    """[start, end); either end may be None."""

    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class JobFilter:
    pipeline_uuid: str = ""
    states: tuple[str, ...] = ()
    links: dict[str, tuple[str, ...]] = field(default_factory=dict)
    created: TimeRange = TimeRange()
    updated: TimeRange = TimeRange()


@dataclass(frozen=True)
class Position:
    """A keyset position: the sort value and uuid of the last job of the previous page."""

    value: datetime
    uuid: str
