"""The read window of a polling source: closed at the watermark, open at the org's time when the
read began, so records that share a `SystemModstamp` second are never skipped (the next read starts
at that second again and the merge's base makes the re-read a no-op).

Pure: no clock, no I/O. It must never move a watermark past the end of the window that read it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["ReadWindow", "changed_since_soql", "soql_datetime"]

UTC = dt.timezone.utc


def soql_datetime(value: dt.datetime) -> str:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: a window bound must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def changed_since_soql(object_name: str, fields: Sequence[str], since: dt.datetime | None) -> str:
    """Every field of the records stamped at or after `since` (all records when None), in stamp order
    and then by Id, so pages resume where they stopped."""
    where = f" WHERE SystemModstamp >= {soql_datetime(since)}" if since is not None else ""
    return f"SELECT {', '.join(fields)} FROM {object_name}{where} ORDER BY SystemModstamp, Id"


@dataclass
class ReadWindow:
    """[start, end) over `SystemModstamp`. `end` is fixed once, by the org's time of the first page
    (the Date header), less a configurable lag; records at or after it belong to the next read."""

    start: dt.datetime | None
    end: dt.datetime | None = None

    def close(self, org_now: Callable[[], dt.datetime], lag: dt.timedelta = dt.timedelta(0)) -> dt.datetime:
        if self.end is None:
            self.end = org_now() - lag
        return self.end

    def inside(self, records: Iterable[dict[str, Any]], stamp_of: Callable[[Any], dt.datetime]
               ) -> list[dict[str, Any]]:
        """The records of a page that fall before the window's end."""
        if self.end is None:
            raise RuntimeError("the window is not closed yet: call close() with the org's time first")
        return [r for r in records if stamp_of(r["SystemModstamp"]) < self.end]

    def watermark_after(self, page: Sequence[dict[str, Any]], stamp_of: Callable[[Any], dt.datetime]
                        ) -> dt.datetime | None:
        """Where the next read starts once this page is applied: its last stamp (pages come in stamp
        order), never past the window's end; None for an empty page (the watermark stays)."""
        if not page:
            return None
        last = stamp_of(page[-1]["SystemModstamp"])
        return min(last, self.end) if self.end is not None else last
