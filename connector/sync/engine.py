"""The sync engine: one cycle per object, parents before children.

Pull reads Salesforce changes in a window closed at its start and open at the
org's time when the run began, merges each record three-way against the base
and applies the result locally; the watermark advances in the same transaction
as the rows it covers. Push then sends the local changes the capture triggers
logged: creates as upserts on the external-ID field holding the row's UUID (a
retry can never duplicate), updates with only the changed fields, deletes — all
through sObject Collections. A field's base advances only once both sides hold
its value, so a crash at any instant leaves a change to be sent again, never lost."""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import asdict
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Table, and_, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, StatementError
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential

from connector.errors import AuthenticationFailed, ConfigurationError, ConnectorError, QuotaExhausted
from connector.mapping import Mapping
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.model import ObjectSchema
from connector.schema_mirror.tables import object_table
from connector.sync import capture
from connector.sync.apply import PagePlanner, RemoteGuard, delete_local, execute, read_context  # noqa: F401
from connector.sync.merge import Conflict
from connector.sync.ledger import PULL_OPERATIONS, RETRY_ATTEMPTS, Ledger, encode  # noqa: F401
from connector.sync.push import MissingParent, PushDecision, Pusher, PushGuard  # noqa: F401
from connector.sync.report import ObjectCounts, RunReport
from connector.sync.policies import get_policy
from connector.sync.sources import PollSource
from connector.sync.state import SyncTables, add_missing_columns, end_dead_runs, new_owner, sync_tables
from connector.sync.values import (SYSTEM_FIELDS, UTC, NotSendable, decode_base, encode_base,  # noqa: F401
                                   fields_by_name, wire)
from connector.sync.window import changed_since_soql

log = logging.getLogger("connector.sync")

# Salesforce keeps deletes 15 days: a watermark older than that cannot see every delete.
DELETE_LOG_REACH = dt.timedelta(days=15)
# Objects with no IsDeleted and no getDeleted (Territory2, UserTerritory2Association) lose deletes
# silently; their Id sets are compared this often.
RECONCILE_WITHOUT_DELETE_LOG = dt.timedelta(hours=1)




class SyncEngine:
    """Keeps the mapped objects equal on both sides; build it through `connector.bootstrap`."""

    def __init__(self, client: SalesforceClient, engine: Engine, mapping: Mapping, mirror: SchemaMirror, *,
                 read_lag: dt.timedelta = dt.timedelta(0), bulk_threshold: int = 10_000,
                 progress: Callable[[str, str, int], None] | None = None) -> None:
        self.client, self.engine, self.mapping, self.mirror = client, engine, mapping, mirror
        self.schema, self.prefix = mirror.schema, mirror.prefix
        self.read_lag = read_lag
        self.bulk_threshold = bulk_threshold
        self.progress = progress
        self.meta = MetaData(schema=self.schema)
        self.state: SyncTables = sync_tables(self.meta, self.prefix)
        self.ledger = Ledger(self.state)
        self.capture_fingerprints = capture.capture_table(self.meta, self.prefix)
        self._table_cache: tuple[dict[str, ObjectSchema], dict[str, Table]] | None = None
        # Domain rules consulted before a record is sent (co-sell: split totals, edit locks).
        self.guards: dict[str, list[PushGuard]] = {}
        # Rules on what arrives from Salesforce: fields whose new value is refused (with a reason);
        # the org's record is put back to the base value both sides last agreed on.
        self.remote_guards: dict[str, list[RemoteGuard]] = {}
        self._held: set[str] = set()
        # Observation points of a cycle (`HOOK_POINTS`), called with the point's name and what it is
        # about; the interleaving tests write to either side there. A hook must not raise.
        # pulled: a page read from Salesforce, not applied yet; applying: its transaction is about to
        # commit; answered: Salesforce answered a push; recording: the base is about to commit.
        self.hook: Callable[[str, dict[str, Any]], None] | None = None
        self._pull_parked: dict[str, str] = {}
        self._window_starts: dict[str, dt.datetime | None] = {}

    def _hook(self, point: str, **context: Any) -> None:
        if self.hook is not None:
            self.hook(point, context)

    # -- set-up -----------------------------------------------------------------------------
    def prepare(self) -> dict[str, ObjectSchema]:
        """Check the sync tables and change capture, creating them where missing and reinstalling
        capture where its definition changed; on an up-to-date database this only reads (no DDL, so no
        exclusive lock waits for a portal transaction). The mirrored schemas are read once per process
        and again only when the mirror changed."""
        schemas = self.mirror.schemas()
        if not schemas:
            raise ConnectorError("nothing is mirrored yet: run `cosell mirror` before `cosell sync`")
        for name, om in self.mapping.objects.items():
            for policy in {om.conflict_policy, *om.field_policies.values()}:
                try:
                    get_policy(policy)
                except KeyError as exc:
                    # A name a plug-in registered without an implementation would fail only at the
                    # first conflict; fail at start instead.
                    raise ConfigurationError(f"mapping object {name}: {exc.args[0]}") from None
        with self.engine.begin() as conn:
            self.meta.create_all(conn, tables=[*self.state.all(), self.capture_fingerprints], checkfirst=True)
            capture.ensure(conn, list(schemas.values()), self.state.changes.name, self.capture_fingerprints,
                           schema=self.schema)
        return schemas

    def tables(self, schemas: dict[str, ObjectSchema] | None = None) -> dict[str, Table]:
        """The mirrored tables of `schemas` (default: every mirrored object), as SQLAlchemy tables.
        Built again only when the schemas are new objects (the mirror changed): a one-object run of
        `cosell serve` must not rebuild every mapped table."""
        if schemas is None:
            schemas = self.mirror.schemas()
        cached = self._table_cache
        if cached and cached[0].keys() == schemas.keys() and all(cached[0][n] is o for n, o in schemas.items()):
            return dict(cached[1])
        md = MetaData(schema=self.schema)
        tables = {name: object_table(obj, md, self.engine.dialect) for name, obj in schemas.items()}
        self._table_cache = (dict(schemas), tables)
        return dict(tables)

    def order(self, schemas: dict[str, ObjectSchema]) -> list[str]:
        """Objects with parents first, so a child can be linked to a parent created in the same run."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(name: str) -> None:
            if name in done or name in visiting:
                return
            visiting.add(name)
            for f in schemas[name].references:
                for parent in f.reference_to:
                    if parent in schemas and parent != name:
                        visit(parent)
            visiting.discard(name)
            done.append(name)

        for name in schemas:
            visit(name)
        return done

    # -- a run ------------------------------------------------------------------------------
    def run(self, objects: Iterable[str] | None = None, *, full: bool = False, trigger: str = "manual",
            owner: str | None = None) -> RunReport:
        """One cycle. `owner`: the lock holder this run runs for, who keeps its heartbeat (the
        runner); without one the run is judged alive by its process only. Whatever happens, the
        run row ends: an unexpected error leaves it `failed` with the error, then is raised."""
        schemas = self.prepare()
        self._schemas = schemas
        wanted = {o.lower() for o in objects} if objects is not None else None
        unknown = sorted(o for o in (objects or []) if o.lower() not in {n.lower() for n in schemas})
        if unknown:
            raise ConnectorError(f"not mirrored: {', '.join(unknown)}; mirrored objects: {', '.join(schemas)}")
        tables = self.tables(schemas)
        started = dt.datetime.now(UTC)
        calls_before = self.client.calls
        with self.engine.begin() as conn:
            add_missing_columns(conn, self.state.runs)
            run_id = conn.execute(self.state.runs.insert().values(
                started_at=started, status="running", trigger=trigger, owner=owner or new_owner(),
                heartbeat_at=started if owner else None)).inserted_primary_key[0]
        with self.engine.begin() as conn:
            for dead in end_dead_runs(conn, self.state.runs, run_id, now=started):
                log.warning("run %s was left running by a process that stopped; run %s ended it", dead, run_id)
        report = RunReport(run_id, "running", started)
        unexpected: BaseException | None = None
        self.client.forget_usage()
        order = [n for n in self.order(schemas) if wanted is None or n.lower() in wanted]
        ends: dict[str, dt.datetime] = {}
        try:
            with self.engine.connect() as conn:
                self._pull_parked = self.ledger.objects_parked_on_the_way_in(conn)
            first_pages = self._poll(schemas, order, full)
            for name in order:
                prefetched = first_pages.get(name)
                if isinstance(prefetched, Exception):
                    report.objects[name] = ObjectCounts(error=str(prefetched))
                    if isinstance(prefetched, (QuotaExhausted, AuthenticationFailed)):
                        raise prefetched
                    continue
                report.objects[name], ends[name] = self._pull(schemas[name], tables, full, run_id, prefetched)
                if self._pull_parked.get(name) == "retry":
                    self._reread_parked(schemas[name], tables, report.objects[name], run_id)
            pusher = Pusher(self, schemas, self._window_starts)
            for name in order:
                counts = report.objects[name]
                if schemas[name].synced and counts.error is None and name in ends:
                    if ends[name] is not None and self._has_pending_deletes(name):
                        self._catch_up(schemas[name], tables, ends[name], counts, run_id)
                    pusher.push(schemas[name], tables, counts, run_id)
            failed = [f"{n}: {c.error}" for n, c in report.objects.items() if c.error]
            if failed:
                report.status, report.error = "failed", "; ".join(failed)
            else:
                report.status = ("parked" if report.parked else "retrying" if report.retrying else "succeeded")
        except QuotaExhausted as exc:
            report.status, report.error = "stopped", str(exc)
        except AuthenticationFailed as exc:
            report.status, report.error = "failed", str(exc)
        except ConnectorError as exc:
            report.status, report.error = "failed", str(exc)
            log.error("sync run %s failed: %s", run_id, exc)
        except BaseException as exc:   # a bug or a database error: the row says so, the caller sees it
            report.status, report.error, unexpected = "failed", f"{type(exc).__name__}: {exc}"[:4000], exc
        report.ended_at = dt.datetime.now(UTC)
        report.api_calls = self.client.calls - calls_before
        with self.engine.begin() as conn:
            conn.execute(update(self.state.runs).where(self.state.runs.c.id == run_id).values(
                ended_at=report.ended_at, status=report.status, api_calls=report.api_calls, error=report.error,
                counts=json.dumps({n: asdict(c) for n, c in report.objects.items()})))
        if unexpected is not None:
            raise unexpected
        return report

    # -- pull -------------------------------------------------------------------------------
    def _soql(self, obj: ObjectSchema, watermark: dt.datetime | None) -> str:
        return changed_since_soql(obj.name, [f.name for f in obj.fields], watermark)

    def _poll(self, schemas: dict[str, ObjectSchema], order: list[str], full: bool) -> dict[str, Any]:
        """First pages of the incremental queries, five objects per composite call; the org's time of
        that call bounds their windows. Initial loads are read on their own."""
        if full:
            return {}
        with self.engine.connect() as conn:
            marks = {name: self._watermark(conn, name) for name in order}
        incremental = [n for n in order if marks[n] is not None and schemas[n].field("SystemModstamp")]
        if len(incremental) < 2:
            return {}
        queries = [(self._soql(schemas[n], marks[n]), schemas[n].has_is_deleted) for n in incremental]
        pages = self.client.composite_queries(queries)
        end = self.client.org_now() - self.read_lag
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

    def _pull(self, obj: ObjectSchema, tables: dict[str, Table], full: bool, run_id: int,
              prefetched: tuple[dict[str, Any], dt.datetime] | None = None
              ) -> tuple[ObjectCounts, dt.datetime | None]:
        """Read and apply the object's changes in the closed window [watermark, org time of the read);
        returns the counts and the window's end (None when the object has no SystemModstamp)."""
        counts = ObjectCounts()
        table = tables[obj.name]
        with self.engine.connect() as conn:
            watermark = None if full else self._watermark(conn, obj.name)
        self._window_starts[obj.name] = watermark
        if obj.field("SystemModstamp") is None:
            return counts, None
        include_deleted = obj.has_is_deleted and watermark is not None
        # A full read compares Id sets afterwards, unless the table held no synced row before it
        # (a first load): then there is nothing to reconcile and no reason to hold every Id.
        track_ids = watermark is None and self._has_synced_rows(table)
        seen: set[str] = set()
        source = PollSource(self.client, obj, watermark, include_deleted=include_deleted, prefetched=prefetched,
                            read_lag=self.read_lag, bulk_threshold=self.bulk_threshold)
        for batch in source.batches():
            self._apply_page(obj, tables, batch.records, counts, run_id, batch.position)
            if track_ids:
                seen.update(r["Id"] for r in batch.records)
            counts.pulled += len(batch.records)
            if self.progress:
                self.progress(obj.name, "pulled", counts.pulled)
        end = source.final_position
        reconcile = track_ids or (watermark is not None and self._reconcile_due(obj, watermark, end))
        if reconcile and watermark is not None:
            # The delete log no longer reaches back (or the object has none): compare Id sets.
            seen = {r["Id"] for _, page in self.client.query_pages(f"SELECT Id FROM {obj.name}") for r in page}
        with self.engine.begin() as conn:
            if reconcile:
                self._reconcile_absent(conn, obj, table, seen, counts)
            if reconcile or watermark is None:    # a full read is as good as a reconcile
                self._set_state(conn, obj.name, last_full_reconcile=end)
            self._set_watermark(conn, obj.name, end)
        return counts, end

    def _apply_page(self, obj: ObjectSchema, tables: dict[str, Table], records: list[dict[str, Any]],
                    counts: ObjectCounts, run_id: int, watermark_to: dt.datetime | None) -> None:
        """Merge one page of Salesforce records and apply it in one transaction, with the watermark
        (when given) and any write-back of refused Salesforce values. When the database refuses a value
        (a NUL character, a text longer than its column, a number too large), the page is applied again
        record by record: the record it refuses is parked with the value's problem, the rest go in."""
        self._hook("pulled", object=obj.name, records=records)
        try:
            for attempt in Retrying(retry=retry_if_exception(_lost_a_lock_race), stop=stop_after_attempt(4),
                                    wait=wait_exponential(multiplier=0.05, max=1), reraise=True):
                with attempt:
                    # The page's transaction lost to a portal transaction holding its rows (a deadlock,
                    # a serialisation failure, SQLite's busy lock): nothing of it was written; apply again.
                    self._apply_records(obj, tables, records, counts, run_id, watermark_to)
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
            if watermark_to is not None:
                with self.engine.begin() as conn:
                    self._set_watermark(conn, obj.name, watermark_to)

    def _apply_records(self, obj: ObjectSchema, tables: dict[str, Table], records: list[dict[str, Any]],
                       counts: ObjectCounts, run_id: int, watermark_to: dt.datetime | None) -> None:
        """One page in one transaction: read the portal's side locked, merge (`PagePlanner`), write the
        plan with the watermark, and write refused Salesforce values back before it commits."""
        om = self.mapping.objects[obj.name]
        planner = PagePlanner(obj, tables, om, self.remote_guards.get(obj.name, []))
        with self.engine.begin() as conn:
            if records:
                self._write_lock(conn)
            context = read_context(conn, obj, tables, om, records, self.ledger)
            plan = planner.plan(records, context, dt.datetime.now(UTC))
            execute(conn, obj, tables[obj.name], plan, self.ledger, run_id, self.queue_for_push)
            if watermark_to is not None:
                self._set_watermark(conn, obj.name, watermark_to)
            if self._pull_parked.get(obj.name):
                self.ledger.clear_pulled(conn, obj.name, [r["Id"] for r in records])
            if plan.restores:
                # Written back before the page commits: if the run dies first, the watermark has not
                # moved, the record is read again and refused again.
                by_name = fields_by_name(obj)
                self.client.save("update", obj.name, [
                    {"Id": sfid, **{k: wire(by_name[k], v) for k, v in values.items()}}
                    for sfid, values in plan.restores])
                plan.counts.updated_remote += len(plan.restores)
            self._hook("applying", object=obj.name, records=records)
        for name, value in asdict(plan.counts).items():
            if isinstance(value, int):
                setattr(counts, name, getattr(counts, name) + value)

    def _park_pulled(self, obj: ObjectSchema, table: Table, record: dict[str, Any], exc: Exception) -> None:
        """A Salesforce record the local database cannot hold: parked (operation "pull") with what is
        wrong with which value; read again after `cosell mirror` changes the object or on retry."""
        problem = _value_problem(obj, table, record) or _first_line(exc)
        with self.engine.begin() as conn:
            local = conn.execute(select(table.c._uuid).where(table.c.sfid == record["Id"])).scalar()
            field = problem.split(":", 1)[0] if ":" in problem else None
            self.ledger.park(conn, obj.name, local or record["Id"], record["Id"], "pull", {"errors": [{
                "statusCode": "VALUE_NOT_STORABLE", "fields": [field] if field in fields_by_name(obj) else [],
                "message": f"{problem}; the record was not applied locally"}]}, dt.datetime.now(UTC), table=None)

    def _reread_parked(self, obj: ObjectSchema, tables: dict[str, Table], counts: ObjectCounts, run_id: int) -> None:
        """Read again, by Id, the records parked on the way in that an admin or `cosell mirror` queued."""
        with self.engine.connect() as conn:
            ids = [i for i in self.ledger.queued_rereads(conn, obj.name) if _SFID.fullmatch(i or "")]
        for start in range(0, len(ids), 200):
            chunk = ", ".join(f"'{i}'" for i in ids[start:start + 200])
            soql = f"SELECT {', '.join(f.name for f in obj.fields)} FROM {obj.name} WHERE Id IN ({chunk})"
            for _, records in self.client.query_pages(soql):
                self._apply_page(obj, tables, records, counts, run_id, watermark_to=None)
        with self.engine.begin() as conn:
            self.ledger.rereads_done(conn, obj.name)

    def _has_pending_deletes(self, name: str) -> bool:
        ch = self.state.changes
        with self.engine.connect() as conn:
            return conn.execute(select(ch.c.id).where(and_(ch.c.object_name == name, ch.c.op == "D")).limit(1)
                                ).first() is not None

    def _catch_up(self, obj: ObjectSchema, tables: dict[str, Table], since: dt.datetime, counts: ObjectCounts,
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
            self._apply_page(obj, tables, batch.records, counts, run_id, watermark_to=None)
            counts.pulled += len(batch.records)

    def _has_synced_rows(self, table: Table) -> bool:
        with self.engine.connect() as conn:
            return conn.execute(select(table.c._id).where(table.c.sfid.is_not(None)).limit(1)).first() is not None

    def _reconcile_due(self, obj: ObjectSchema, watermark: dt.datetime, end: dt.datetime) -> bool:
        if end - watermark > DELETE_LOG_REACH:
            return True
        if obj.has_is_deleted:
            return False
        with self.engine.connect() as conn:
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

    def queue_for_push(self, conn: Connection, name: str, row_uuid: str, sfid: str | None = None) -> None:
        """Queue a row to be sent at the next run, in the caller's transaction; `sfid` lets a row deleted
        locally still send its delete."""
        conn.execute(self.state.changes.insert().values(object_name=name, row_uuid=row_uuid, sfid=sfid, op="U",
                                                        changed_at=dt.datetime.now(UTC)))

    def _log(self, conn: Connection, obj: ObjectSchema, row_uuid: str | None, sfid: str | None,
             conflicts: Iterable[Conflict], run_id: int, counts: ObjectCounts) -> None:
        counts.conflicts += self.ledger.log_conflicts(conn, obj.name, row_uuid, sfid, conflicts, run_id)

    def retry_parked(self, object_name: str | None = None) -> int:
        """Queue parked records to be tried again at the next run (after an admin fixed the cause, or
        `cosell mirror` changed the object): local changes are sent again, records refused on the way in
        are read again from Salesforce. Returns how many were queued."""
        with self.engine.begin() as conn:
            to_push = self.ledger.requeue(conn, object_name)
            for name, row_uuid, sfid in to_push:
                self.queue_for_push(conn, name, row_uuid, sfid)
            return len(to_push) + len(self.ledger.queued_rereads(conn, object_name)) if object_name else \
                len(to_push) + sum(len(self.ledger.queued_rereads(conn, n)) for n in self.mapping.objects)

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
