"""What a sync run reports: counts per object, and the run's outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

__all__ = ["ObjectCounts", "RunReport"]


@dataclass
class ObjectCounts:
    pulled: int = 0
    created_local: int = 0
    updated_local: int = 0
    deleted_local: int = 0
    created_remote: int = 0
    updated_remote: int = 0
    deleted_remote: int = 0
    conflicts: int = 0
    parked: int = 0
    waiting: int = 0
    retrying: int = 0
    error: str | None = None


@dataclass
class RunReport:
    run_id: int
    status: str
    started_at: dt.datetime
    ended_at: dt.datetime | None = None
    objects: dict[str, ObjectCounts] = field(default_factory=dict)
    api_calls: int = 0
    error: str | None = None

    @property
    def parked(self) -> int:
        return sum(c.parked for c in self.objects.values())

    @property
    def retrying(self) -> int:
        return sum(c.retrying for c in self.objects.values())
