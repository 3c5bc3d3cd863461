"""Pull: read Salesforce's changes of one object and apply them locally, page by page.

Each read is a closed window [watermark, org time of the read): later records are the next
read's. A page is merged and written (connector.sync.apply) in one transaction with the
watermark it reaches, so a crash at any instant leaves the window to be read again, never a
gap. A value the local database refuses parks its record (operation "pull") and the rest of
the page goes in; a page that loses a lock race is applied again. Where the delete log no
longer reaches back (or an object has none), Id sets are compared.

Pull never sends a local change to Salesforce (that is push's); the only writes it makes
there put back a Salesforce value a remote guard refused."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError, StatementError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from connector.schema_mirror.model import ObjectSchema
from connector.sync.apply import PagePlanner, delete_local, execute, read_context
from connector.sync.report import ObjectCounts
from connector.sync.sources import PollSource
from connector.sync.values import UTC, fields_by_name, wire
from connector.sync.window import changed_since_soql

if TYPE_CHECKING:
    from connector.sync.engine import SyncEngine

log = logging.getLogger("connector.sync")

__all__ = ["DELETE_LOG_REACH", "RECONCILE_WITHOUT_DELETE_LOG", "Puller"]

# Salesforce keeps deletes 15 days: a watermark older than that cannot see every delete.
DELETE_LOG_REACH = dt.timedelta(days=15)
# Objects with no IsDeleted and no getDeleted (Territory2, UserTerritory2Association) lose deletes
# silently; their Id sets are compared this often.
RECONCILE_WITHOUT_DELETE_LOG = dt.timedelta(hours=1)


class Puller:
    """The pull side of one run (or of a stream's batches): which objects have records parked on the
    way in, and where each object's read window started (push needs it to judge a master delete)."""

    def __init__(self, sync: SyncEngine, pull_parked: dict[str, str] | None = None) -> None:
        self.sync, self.db, self.client = sync, sync.engine, sync.client
        self.mapping, self.state, self.ledger = sync.mapping, sync.state, sync.ledger
        self.pull_parked = pull_parked or {}
        self.window_starts: dict[str, dt.datetime | None] = {}

    def _soql(self, obj: ObjectSchema, watermark: dt.datetime | None) -> str:
        return changed_since_soql(obj.name, [f.name for f in obj.fields], watermark)

    def poll(self, schemas: dict[str, ObjectSchema], order: list[str], full: bool) -> dict[str, Any]:
        """First pages of the incremental queries, five objects per composite call; the org's time of
        that call bounds their windows. Initial loads are read on their own."""
        if full:
            return {}
        with self.db.connect() as conn:
            marks = {name: self._watermark(conn, name) for name in order}
        incremental = [n for n in order if marks[n] is not None and schemas[n].field("SystemModstamp")]
        if len(incremental) < 2:
            return {}
        queries = [(self._soql(schemas[n], marks[n]), schemas[n].has_is_deleted) for n in incremental]
        pages = self.client.composite_queries(queries)
        end = self.client.org_now() - self.sync.read_lag
        return {name: (page if isinstance(page, Exception) else (page, end))
                for name, page in zip(incremental, pages)}

    def _watermark(self, conn: Connection, name: str) -> dt.datetime | None:
        row = conn.execute(select(self.state.state.c.watermark).where(
            self.state.state.c.object_name == name)).first()
        return row[0] if row else None

    def _set_watermark(self, conn: Connection, name: str, value: dt.datetime) -> None:
        self._set_state(conn, name, watermark=value)

    def _set_state(self, conn: Connection, name: str, **values: Any) -> None:
        st = self.state.state
        if conn.execute(select(st.c.object_name).where(st.c.object_name == name)).first():
            conn.execute(update(st).where(st.c.object_name == name).values(**values))
        else:
            conn.execute(st.insert().values(object_name=name, **values))

    def pull(self, obj: ObjectSchema, tables: dict[str, Table], full: bool, run_id: int,
              prefetched: tuple[dict[str, Any], dt.datetime] | None = None
              ) -> tuple[ObjectCounts, dt.datetime | None]:
        """Read and apply the object's changes in the closed window [watermark, org time of the read);
        returns the counts and the window's end (None when the object has no SystemModstamp)."""
        counts = ObjectCounts()
        table = tables[obj.name]
        with self.db.connect() as conn:
            watermark = None if full else self._watermark(conn, obj.name)
        self.window_starts[obj.name] = watermark
        if obj.field("SystemModstamp") is None:
            return counts, None
        include_deleted = obj.has_is_deleted and watermark is not None
        # A full read compares Id sets afterwards, unless the table held no synced row before it
        # (a first load): then there is nothing to reconcile and no reason to hold every Id.
        track_ids = watermark is None and self._has_synced_rows(table)
        seen: set[str] = set()
        source = PollSource(self.client, obj, watermark, include_deleted=include_deleted, prefetched=prefetched,
                            read_lag=self.sync.read_lag, bulk_threshold=self.sync.bulk_threshold)
        for batch in source.batches():
            self.apply_page(obj, tables, batch.records, counts, run_id, self._moves_watermark(obj.name, batch.position))
            if track_ids:
                seen.update(r["Id"] for r in batch.records)
            counts.pulled += len(batch.records)
            if self.sync.progress:
                self.sync.progress(obj.name, "pulled", counts.pulled)
        end = source.final_position
        reconcile = track_ids or (watermark is not None and self._reconcile_due(obj, watermark, end))
        if reconcile and watermark is not None:
            # The delete log no longer reaches back (or the object has none): compare Id sets.
            seen = {r["Id"] for _, page in self.client.query_pages(f"SELECT Id FROM {obj.name}") for r in page}
        with self.db.begin() as conn:
            if reconcile:
                self._reconcile_absent(conn, obj, table, seen, counts)
            if reconcile or watermark is None:    # a full read is as good as a reconcile
                self._set_state(conn, obj.name, last_full_reconcile=end)
            self._set_watermark(conn, obj.name, end)
        return counts, end

    def _moves_watermark(self, name: str, to: dt.datetime | None) -> Callable[[Connection], None] | None:
        return None if to is None else (lambda conn: self._set_watermark(conn, name, to))

    def apply_page(self, obj: ObjectSchema, tables: dict[str, Table], records: list[dict[str, Any]],
                    counts: ObjectCounts, run_id: int, position: Callable[[Connection], None] | None) -> None:
        """Merge one page of Salesforce records and apply it in one transaction, with the watermark
        (when given) and any write-back of refused Salesforce values. When the database refuses a value
        (a NUL character, a text longer than its column, a number too large), the page is applied again
        record by record: the record it refuses is parked with the value's problem, the rest go in."""
        self.sync._hook("pulled", object=obj.name, records=records)
        try:
            for attempt in Retrying(retry=retry_if_exception(_lost_a_lock_race), stop=stop_after_attempt(4),
                                    wait=wait_exponential(multiplier=0.05, max=1), reraise=True):
                with attempt:
                    # The page's transaction lost to a portal transaction holding its rows (a deadlock,
                    # a serialisation failure, SQLite's busy lock): nothing of it was written; apply again.
                    self._apply_records(obj, tables, records, counts, run_id, position)
        except StatementError as exc:
            if isinstance(exc, OperationalError) or len(records) == 0:
                raise
            log.warning("%s: the database refused a value of this page (%s); applying it record by record",
                        obj.name, _first_line(exc))
            for record in records:
                try:
                    self._apply_records(obj, tables, [record], counts, run_id, None)
                except StatementError as one:
                    if isinstance(one, OperationalError):
                        raise
                    self._park_pulled(obj, tables[obj.name], record, one)
                    counts.parked += 1
            if position is not None:
                with self.db.begin() as conn:
                    position(conn)

    def _apply_records(self, obj: ObjectSchema, tables: dict[str, Table], records: list[dict[str, Any]],
                       counts: ObjectCounts, run_id: int, position: Callable[[Connection], None] | None) -> None:
        """One page in one transaction: read the portal's side locked, merge (`PagePlanner`), write the
        plan with the watermark, and write refused Salesforce values back before it commits."""
        om = self.mapping.objects[obj.name]
        planner = PagePlanner(obj, tables, om, self.sync.remote_guards.get(obj.name, []))
        with self.db.begin() as conn:
            if records:
                self._write_lock(conn)
            context = read_context(conn, obj, tables, om, records, self.ledger)
            plan = planner.plan(records, context, dt.datetime.now(UTC))
            execute(conn, obj, tables[obj.name], plan, self.ledger, run_id, self.sync.queue_for_push)
            if position is not None:
                position(conn)
            if self.pull_parked.get(obj.name):
                self.ledger.clear_pulled(conn, obj.name, [r["Id"] for r in records])
            if plan.restores:
                # Written back before the page commits: if the run dies first, the watermark has not
                # moved, the record is read again and refused again.
                by_name = fields_by_name(obj)
                self.client.save("update", obj.name, [
                    {"Id": sfid, **{k: wire(by_name[k], v) for k, v in values.items()}}
                    for sfid, values in plan.restores])
                plan.counts.updated_remote += len(plan.restores)
            self.sync._hook("applying", object=obj.name, records=records)
        for name, value in asdict(plan.counts).items():
            if isinstance(value, int):
                setattr(counts, name, getattr(counts, name) + value)

    def _park_pulled(self, obj: ObjectSchema, table: Table, record: dict[str, Any], exc: Exception) -> None:
        """A Salesforce record the local database cannot hold: parked (operation "pull") with what is
        wrong with which value; read again after `cosell mirror` changes the object or on retry."""
        problem = _value_problem(obj, table, record) or _first_line(exc)
        with self.db.begin() as conn:
            local = conn.execute(select(table.c._uuid).where(table.c.sfid == record["Id"])).scalar()
            field = problem.split(":", 1)[0] if ":" in problem else None
            self.ledger.park(conn, obj.name, local or record["Id"], record["Id"], "pull", {"errors": [{
                "statusCode": "VALUE_NOT_STORABLE", "fields": [field] if field in fields_by_name(obj) else [],
                "message": f"{problem}; the record was not applied locally"}]}, dt.datetime.now(UTC), table=None)

    def reread_parked(self, obj: ObjectSchema, tables: dict[str, Table], counts: ObjectCounts, run_id: int) -> None:
        """Read again, by Id, the records parked on the way in that an admin or `cosell mirror` queued."""
        with self.db.connect() as conn:
            ids = [i for i in self.ledger.queued_rereads(conn, obj.name) if _SFID.fullmatch(i or "")]
        for start in range(0, len(ids), 200):
            chunk = ", ".join(f"'{i}'" for i in ids[start:start + 200])
            soql = f"SELECT {', '.join(f.name for f in obj.fields)} FROM {obj.name} WHERE Id IN ({chunk})"
            for _, records in self.client.query_pages(soql):
                self.apply_page(obj, tables, records, counts, run_id, position=None)
        with self.db.begin() as conn:
            self.ledger.rereads_done(conn, obj.name)

    def has_pending_deletes(self, name: str) -> bool:
        ch = self.state.changes
        with self.db.connect() as conn:
            return conn.execute(select(ch.c.id).where(and_(ch.c.object_name == name, ch.c.op == "D")).limit(1)
                                ).first() is not None

    def catch_up(self, obj: ObjectSchema, tables: dict[str, Table], since: dt.datetime, counts: ObjectCounts,
                  run_id: int) -> None:
        """Before local deletes go out: read what Salesforce changed since the pull's window closed, the
        open second included, and merge it like any page (the watermark stays: the next run reads it again
        and the base makes that a no-op), so a delete never erases a Salesforce edit it could have seen
        (the edit-vs-delete policy decides). Updates need no such read: each is read in its own composite
        call (`_judge_overwrites`). A delete cannot be undone through the REST API, so it is read first;
        one call per object with pending deletes. What remains is the time between this read and the
        delete's arrival (milliseconds)."""
        if obj.field("SystemModstamp") is None:
            return
        source = PollSource(self.client, obj, since, include_deleted=obj.has_is_deleted, bounded=False)
        for batch in source.batches():
            self.apply_page(obj, tables, batch.records, counts, run_id, position=None)
            counts.pulled += len(batch.records)

    def _has_synced_rows(self, table: Table) -> bool:
        with self.db.connect() as conn:
            return conn.execute(select(table.c._id).where(table.c.sfid.is_not(None)).limit(1)).first() is not None

    def _reconcile_due(self, obj: ObjectSchema, watermark: dt.datetime, end: dt.datetime) -> bool:
        if end - watermark > DELETE_LOG_REACH:
            return True
        if obj.has_is_deleted:
            return False
        with self.db.connect() as conn:
            last = conn.execute(select(self.state.state.c.last_full_reconcile).where(
                self.state.state.c.object_name == obj.name)).scalar()
        return last is None or end - last > RECONCILE_WITHOUT_DELETE_LOG

    def _reconcile_absent(self, conn: Connection, obj: ObjectSchema, table: Table, seen: set[str],
                          counts: ObjectCounts) -> None:
        """After a full read, rows whose record the org no longer has are deleted locally (a synced
        row that changed locally is left for the merge of the next run to decide)."""
        dirty = self.ledger.dirty_uuids(conn, obj.name)
        rows = conn.execute(select(table.c._uuid, table.c.sfid).where(table.c.sfid.is_not(None))).all()
        gone = [r for r in rows if r.sfid not in seen and r._uuid not in dirty]
        for r in gone:
            delete_local(conn, table, r._uuid, self.ledger)
            counts.deleted_local += 1

    def _write_lock(self, conn: Connection) -> None:
        """On SQLite, take the database's write lock now, at the start of the transaction: the driver
        begins a transaction only at the first write, so rows read before it could be changed by the
        portal before this transaction writes them. (An UPDATE that matches nothing still takes it.)"""
        if conn.dialect.name == "sqlite":
            st = self.state.state
            conn.execute(update(st).where(st.c.object_name.is_(None)).values(watermark=st.c.watermark))


def _lost_a_lock_race(exc: BaseException) -> bool:
    """A transaction the database rolled back for another's sake, worth running again."""
    if not isinstance(exc, OperationalError):
        return False
    code = getattr(exc.orig, "sqlstate", None)
    return code in ("40P01", "40001") or "database is locked" in str(exc.orig)


_SFID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0][:300] if text else type(exc).__name__


def _value_problem(obj: ObjectSchema, table: Table, record: dict[str, Any]) -> str | None:
    """What is wrong, for the local database, with one of the record's values, named by field."""
    for f in obj.fields:
        value = record.get(f.name)
        if value is None or f.name not in table.c and f.column not in table.c:
            continue
        column = table.c[f.column]
        if isinstance(value, str):
            if "\x00" in value:
                return f"{f.name}: the value holds a NUL character, which the database cannot store"
            length = getattr(column.type, "length", None)
            if length and len(value) > length:
                return (f"{f.name}: the value is {len(value)} characters long, the column holds {length} "
                        "(run `cosell mirror` if the field was widened in Salesforce)")
        if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool) and f.precision:
            number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
            digits = len(str(abs(int(number)))) if number.is_finite() and abs(number) >= 1 else 0
            if digits > f.precision - f.scale:
                return (f"{f.name}: {value} has {digits} digits before the decimal point, the column holds "
                        f"{f.precision - f.scale} (precision {f.precision}, scale {f.scale})")
    return None
