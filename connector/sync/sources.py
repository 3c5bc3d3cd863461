"""Change sources: where Salesforce's changes come from, as batches of records with the position
the source resumes from once a batch is applied. The engine applies a batch and commits its
position in the same transaction; apply and push never know which source ran.

Polling is one source (REST query pages, Bulk 2.0 for large reads, in a closed read window);
a streaming source (Change Data Capture) fits the same shape with a replay id as its position.
A source only reads: it never writes to Salesforce or to the local database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.model import ObjectSchema
from connector.sync.window import ReadWindow, changed_since_soql

__all__ = ["BULK_TEXT_TYPES", "ChangeSource", "PollSource", "RemoteBatch"]

# Bulk 2.0 CSV cannot tell null from empty; Salesforce stores neither for these, so "" is null.
BULK_TEXT_TYPES = frozenset({"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone",
                             "url", "encryptedstring", "id", "reference"})


@dataclass(frozen=True)
class RemoteBatch:
    """Salesforce records (wire form, each with its Id) of one object, and where the source resumes
    once they are applied (None: the position stays where it was)."""

    records: list[dict[str, Any]]
    position: Any = None


class ChangeSource(Protocol):
    object_name: str

    def batches(self) -> Iterator[RemoteBatch]:
        """The changes, batch by batch, in the order they must be applied."""

    @property
    def final_position(self) -> Any:
        """Where the next read starts once every batch is applied (after `batches()` ran out)."""


class PollSource:
    """The records of `obj` stamped at or after `since`: REST query pages (the first one may come
    prefetched from the composite poll, with the org time of that call), or Bulk 2.0 result pages
    when the first page says the read is large (initial loads, reloads). Bounded, the read is the
    closed window [since, org time of the first page): later records are the next read's, and each
    batch's position is its last stamp. Unbounded (a read right before a push), everything up to now
    is read and no position moves: the next bounded read covers it again."""

    def __init__(self, client: SalesforceClient, obj: ObjectSchema, since: dt.datetime | None, *,
                 include_deleted: bool, bounded: bool = True,
                 prefetched: tuple[dict[str, Any], dt.datetime] | None = None,
                 read_lag: dt.timedelta = dt.timedelta(0), bulk_threshold: int = 10_000) -> None:
        self.client, self.obj, self.object_name = client, obj, obj.name
        self.include_deleted, self.bounded = include_deleted, bounded
        self.prefetched, self.read_lag, self.bulk_threshold = prefetched, read_lag, bulk_threshold
        self.soql = changed_since_soql(obj.name, [f.name for f in obj.fields], since)
        self.window = ReadWindow(since, prefetched[1] if prefetched else None)
        self._stamp = next(f for f in obj.fields if f.name == "SystemModstamp").to_python

    @property
    def final_position(self) -> dt.datetime | None:
        return self.window.end if self.bounded else None

    def batches(self) -> Iterator[RemoteBatch]:
        for records in self._pages():
            if not self.bounded:
                yield RemoteBatch(records)
                continue
            inside = self.window.inside(records, self._stamp)
            yield RemoteBatch(inside, self.window.watermark_after(inside, self._stamp))

    def _pages(self) -> Iterator[list[dict[str, Any]]]:
        first = True
        for total, records in self.client.query_pages(self.soql, include_deleted=self.include_deleted,
                                                      first=self.prefetched[0] if self.prefetched else None):
            self.window.close(self.client.org_now, self.read_lag)
            if first and total > self.bulk_threshold:
                yield from self._bulk_pages()
                return
            first = False
            yield records

    def _bulk_pages(self) -> Iterator[list[dict[str, Any]]]:
        texts = [f.name for f in self.obj.fields if f.sf_type in BULK_TEXT_TYPES]
        for rows in self.client.bulk_query(self.obj.name, self.soql, include_deleted=self.include_deleted,
                                           batch_rows=2000):
            for row in rows:
                for name in texts:
                    if row.get(name) == "":
                        row[name] = None
            yield rows
