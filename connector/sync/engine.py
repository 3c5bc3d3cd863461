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
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import MetaData, Table, and_, delete, func, select, update
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, StatementError

from connector.errors import AuthenticationFailed, ConfigurationError, ConnectorError, QuotaExhausted
from connector.mapping import Mapping, ObjectMapping
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.model import FieldSchema, ObjectSchema, ref_uuid_column
from connector.schema_mirror.tables import object_table
from connector.sync import capture
from connector.sync.merge import Conflict, merge_record, values_equal
from connector.sync.ledger import (PULL_OPERATIONS, RETRY_ATTEMPTS, Ledger, encode, gave_up,  # noqa: F401
                                    transient)
from connector.sync.policies import FieldConflict, get_policy
from connector.sync.sources import PollSource, RemoteBatch
from connector.sync.state import SyncTables, add_missing_columns, end_dead_runs, new_owner, sync_tables
from connector.sync.window import changed_since_soql

log = logging.getLogger("connector.sync")

# Fields the org maintains; never compared as changes, never written.
SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "SystemModstamp", "LastModifiedDate", "LastModifiedById",
                           "CreatedDate", "CreatedById", "LastActivityDate", "LastViewedDate",
                           "LastReferencedDate"})
UTC = dt.timezone.utc
# Salesforce keeps deletes 15 days: a watermark older than that cannot see every delete.
DELETE_LOG_REACH = dt.timedelta(days=15)
# Objects with no IsDeleted and no getDeleted (Territory2, UserTerritory2Association) lose deletes
# silently; their Id sets are compared this often.
RECONCILE_WITHOUT_DELETE_LOG = dt.timedelta(hours=1)


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
        self._restores: list[tuple[str, str, dict[str, Any]]] = []
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
        with self.engine.connect() as conn:
            self._pull_parked = self.ledger.objects_parked_on_the_way_in(conn)
        try:
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
            for name in order:
                counts = report.objects[name]
                if schemas[name].synced and counts.error is None and name in ends:
                    if ends[name] is not None and self._has_pending_deletes(name):
                        self._catch_up(schemas[name], tables, ends[name], counts, run_id)
                    self._push(schemas[name], tables, counts, run_id)
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
        page_counts = ObjectCounts()
        self._restores: list[tuple[str, str, dict[str, Any]]] = []
        with self.engine.begin() as conn:
            self._apply_remote_page(conn, obj, tables, records, page_counts, run_id)
            if watermark_to is not None:
                self._set_watermark(conn, obj.name, watermark_to)
            if self._pull_parked.get(obj.name):
                self.ledger.clear_pulled(conn, obj.name, [r["Id"] for r in records])
            if self._restores:
                # Written back before the page commits: if the run dies first, the watermark has not
                # moved, the record is read again and refused again.
                by_name = fields_by_name(obj)
                self.client.save("update", obj.name, [
                    {"Id": sfid, **{k: _wire(by_name[k], v) for k, v in values.items()}}
                    for _, sfid, values in self._restores])
                page_counts.updated_remote += len(self._restores)
            self._hook("applying", object=obj.name, records=records)
        for name, value in asdict(page_counts).items():
            if isinstance(value, int):
                setattr(counts, name, getattr(counts, name) + value)

    # == [stream] the one public entry the streaming source uses (connector/sync/streaming.py) =====
    def apply_change_batch(self, object_name: str, batch: RemoteBatch, run_id: int,
                           commit_position: Callable[[Connection, Any], None]) -> ObjectCounts:
        """Merge one batch of any change source through the same apply as a pull page, and commit
        `commit_position(conn, batch.position)` in the same transaction as the rows it covers."""
        schemas = self.prepare()
        tables, obj, counts = self.tables(schemas), schemas[object_name], ObjectCounts()
        self._restores = []
        with self.engine.begin() as conn:
            self._apply_remote_page(conn, obj, tables, batch.records, counts, run_id)
            if self._restores:
                by_name = fields_by_name(obj)
                self.client.save("update", obj.name, [
                    {"Id": sfid, **{k: _wire(by_name[k], v) for k, v in values.items()}}
                    for _, sfid, values in self._restores])
                counts.updated_remote += len(self._restores)
            commit_position(conn, batch.position)
        counts.pulled = len(batch.records)
        return counts
    # == [stream] end ==============================================================================

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
        dirty = self._dirty_uuids(conn, obj.name)
        rows = conn.execute(select(table.c._uuid, table.c.sfid).where(table.c.sfid.is_not(None))).all()
        gone = [r for r in rows if r.sfid not in seen and r._uuid not in dirty]
        for r in gone:
            self._delete_local(conn, table, r._uuid)
            counts.deleted_local += 1

    def _dirty_uuids(self, conn: Connection, name: str) -> dict[str, dt.datetime]:
        ch = self.state.changes
        rows = conn.execute(select(ch.c.row_uuid, func.max(ch.c.changed_at)).where(ch.c.object_name == name)
                            .group_by(ch.c.row_uuid)).all()
        return {r[0]: r[1] for r in rows}

    def _apply_remote_page(self, conn: Connection, obj: ObjectSchema, tables: dict[str, Table],
                           records: list[dict[str, Any]], counts: ObjectCounts, run_id: int) -> None:
        table = tables[obj.name]
        by_name = fields_by_name(obj)
        om = self.mapping.objects[obj.name]
        ext_field = by_name.get(om.external_id) if om.external_id else None
        ids = [r["Id"] for r in records]
        if ids:
            self._write_lock(conn)
        # The rows are read locked (FOR UPDATE on PostgreSQL, the write lock taken above on SQLite): a
        # portal write to one of them waits for this page to commit and lands on top of it as a change,
        # instead of being overwritten by the values merged from what was read before it.
        local_rows = {row.sfid: dict(row._mapping) for row in conn.execute(
            select(table).where(table.c.sfid.in_(ids)).order_by(table.c._id).with_for_update())} if ids else {}
        ext_values = [r.get(ext_field.name) for r in records if ext_field and r.get(ext_field.name)
                      and r["Id"] not in local_rows]
        by_uuid = {row._uuid: dict(row._mapping) for row in conn.execute(
            select(table).where(table.c._uuid.in_(ext_values)).order_by(table.c._id).with_for_update())} \
            if ext_values else {}
        dirty = self._dirty_uuids(conn, obj.name) if obj.synced else {}
        # Rows holding an edit Salesforce refused: their change entry is consumed, but the edit is not
        # agreed, so a Salesforce delete of such a record goes through the edit-vs-delete policy and log.
        parked = self.ledger.parked_among(conn, obj.name, [row["_uuid"] for row in local_rows.values()]) \
            if obj.synced else set()
        ch = self.state.changes
        deleted_here = {r.sfid: r for r in conn.execute(
            select(ch.c.row_uuid, ch.c.sfid, ch.c.changed_at, ch.c.base).where(and_(
                ch.c.object_name == obj.name, ch.c.op == "D", ch.c.sfid.in_(ids))))} if obj.synced and ids else {}
        merge_fields = [f.name for f in obj.fields if f.name not in SYSTEM_FIELDS]
        writable = {f.name for f in obj.fields if (f.createable or f.updateable) and f.name not in SYSTEM_FIELDS}
        inserts: list[dict[str, Any]] = []
        ref_maps = self._ref_maps(conn, obj, tables, records)
        for record in records:
            remote = {f.name: f.to_python(record.get(f.name)) for f in obj.fields}
            local = local_rows.get(record["Id"])
            if local is None and ext_field is not None and record.get(ext_field.name) in by_uuid:
                local = by_uuid[record[ext_field.name]]
            deleted = bool(remote.get("IsDeleted"))
            if local is None and record["Id"] in deleted_here:
                self._merge_local_delete(conn, obj, tables, table, record["Id"], deleted_here[record["Id"]],
                                         remote, deleted, merge_fields, writable, om, run_id, counts)
                continue
            if local is None:
                if deleted:
                    continue
                self._insert_local(conn, obj, tables, table, remote, batch=inserts, ref_maps=ref_maps)
                counts.created_local += 1
                continue
            base = self._decode_base(obj, local.get("_base"))
            local_values = {f.name: local.get(f.column) for f in obj.fields}
            if base is None and local.get("sfid") is None:
                # The portal's create reached Salesforce but its answer did not (a crash, a lost reply):
                # what the create carried is agreed, so a value Salesforce filled in (a default owner) is
                # taken, and a portal edit made since still differs from it and wins as a local change.
                base = {n: (remote.get(n) if local_values.get(n) is not None else None) for n in merge_fields}
            # A parked row still holds the edit Salesforce refused: never overwritten without the log.
            is_dirty = obj.synced and (local["_uuid"] in dirty or local["_uuid"] in parked)
            result = merge_record(
                object_name=obj.name, record_key=record["Id"], fields=merge_fields, base=base,
                local=local_values, remote=remote, local_state="present",
                remote_state="deleted" if deleted else "present",
                policy_for=om.policy_for, record_policy=om.conflict_policy,
                local_changed_at=dirty.get(local["_uuid"]), remote_changed_at=remote.get("SystemModstamp"),
                remote_writable=writable if obj.synced else (), local_dirty=is_dirty)
            refused = self._refused_remote(obj, base, remote)
            if refused:
                result = self._undo_remote(obj, result, base, remote, refused, local["_uuid"], record["Id"],
                                           conn, run_id, counts)
            self._log(conn, obj, local["_uuid"], record["Id"], result.conflicts, run_id, counts)
            if result.action == "delete_local":
                self._delete_local(conn, table, local["_uuid"])
                counts.deleted_local += 1
                continue
            if result.action == "restore_remote" and self._master_gone(conn, obj, tables, local_values):
                # A master-detail child cannot come back without its master: it follows the parent's
                # delete, and the portal's edit stays in the conflict log.
                self._log(conn, obj, local["_uuid"], record["Id"], [Conflict(
                    field=None, base=None, local=local_values, remote=None, local_changed_at=dirty.get(local["_uuid"]),
                    remote_changed_at=remote.get("SystemModstamp"), policy=om.conflict_policy, winner="salesforce",
                    value=None, parked=False, reason="its master record was deleted in Salesforce, so the record "
                    "cannot be restored; the portal's values are kept here")], run_id, counts)
                self._delete_local(conn, table, local["_uuid"])
                counts.deleted_local += 1
                continue
            if result.action == "restore_remote":
                # The local edit wins over a Salesforce delete: the row is created again from its values.
                conn.execute(update(table).where(table.c._uuid == local["_uuid"]).values(
                    sfid=None, _base=None, _sync_version=table.c._sync_version + 1))
                self.queue_for_push(conn, obj.name, local["_uuid"])
                continue
            new_local = dict(result.to_local)
            # System fields always follow Salesforce; they are never merged.
            for name in SYSTEM_FIELDS:
                if name in by_name and name != "IsDeleted":
                    new_local[name] = remote.get(name)
            agreed = dict(result.merged)
            for name in result.to_remote:     # not yet in Salesforce: keep the old base so push sends it
                agreed[name] = (base or {}).get(name)
            values = {by_name[n].column: v for n, v in new_local.items() if n in by_name}
            values.update(self._ref_uuids(conn, obj, tables, {**local_values, **new_local}))
            values.update(sfid=record["Id"], _base=self._encode_base(agreed), _synced_at=dt.datetime.now(UTC),
                          _sync_version=table.c._sync_version + 1)
            conn.execute(update(table).where(table.c._uuid == local["_uuid"]).values(**values))
            if result.to_local:
                counts.updated_local += 1
        # One multi-row insert per set of columns (rows carrying their own _uuid differ from the rest).
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        for row in inserts:
            groups.setdefault(tuple(sorted(row)), []).append(row)
        for rows in groups.values():
            conn.execute(table.insert(), rows)

    def _write_lock(self, conn: Connection) -> None:
        """On SQLite, take the database's write lock now, at the start of the transaction: the driver
        begins a transaction only at the first write, so rows read before it could be changed by the
        portal before this transaction writes them. (An UPDATE that matches nothing still takes it.)"""
        if conn.dialect.name == "sqlite":
            st = self.state.state
            conn.execute(update(st).where(st.c.object_name.is_(None)).values(watermark=st.c.watermark))

    def _refused_remote(self, obj: ObjectSchema, base: dict[str, Any] | None,
                        remote: dict[str, Any]) -> dict[str, str]:
        refused: dict[str, str] = {}
        for guard in self.remote_guards.get(obj.name, []):
            refused.update(guard(obj, base, remote))
        return refused

    def _undo_remote(self, obj: ObjectSchema, result: Any, base: dict[str, Any] | None, remote: dict[str, Any],
                     refused: dict[str, str], row_uuid: str, sfid: str, conn: Connection, run_id: int,
                     counts: ObjectCounts) -> Any:
        """Keep the base value of refused fields on both sides: the portal keeps it, and the org's
        record is written back to it after this page commits."""
        from dataclasses import replace

        base = base or {}
        restore = {name: base.get(name) for name in refused}
        conflicts = [Conflict(field=name, base=base.get(name), local=base.get(name), remote=remote.get(name),
                              local_changed_at=None, remote_changed_at=remote.get("SystemModstamp"),
                              policy="remote_guard", winner="local", value=base.get(name), parked=False,
                              reason=reason) for name, reason in refused.items()]
        self._restores.append((obj.name, sfid, restore))
        return replace(result, merged={**result.merged, **restore},
                       to_local={k: v for k, v in result.to_local.items() if k not in refused},
                       conflicts=tuple(result.conflicts) + tuple(conflicts))

    def _master_gone(self, conn: Connection, obj: ObjectSchema, tables: dict[str, Table],
                     values: dict[str, Any]) -> bool:
        for f in obj.references:
            parent_id = values.get(f.name)
            if not f.cascade_delete or not parent_id:
                continue
            for parent_name in f.reference_to:
                parent = tables.get(parent_name)
                if parent is not None and conn.execute(select(parent.c._id).where(
                        parent.c.sfid == parent_id)).first() is None:
                    return True
        return False

    def _merge_local_delete(self, conn: Connection, obj: ObjectSchema, tables: dict[str, Table], table: Table,
                            sfid: str, entry: Any, remote: dict[str, Any], remote_deleted: bool,
                            merge_fields: list[str], writable: set[str], om: ObjectMapping, run_id: int,
                            counts: ObjectCounts) -> None:
        """A row deleted in the portal whose record Salesforce also changed: merge the delete."""
        if remote_deleted:
            conn.execute(delete(self.state.changes).where(self.state.changes.c.row_uuid == entry.row_uuid))
            return
        result = merge_record(
            object_name=obj.name, record_key=sfid, fields=merge_fields, base=self._decode_base(obj, entry.base),
            local=None, remote=remote, local_state="deleted", remote_state="present",
            policy_for=om.policy_for, record_policy=om.conflict_policy, local_changed_at=entry.changed_at,
            remote_changed_at=remote.get("SystemModstamp"), remote_writable=writable, local_dirty=True)
        self._log(conn, obj, entry.row_uuid, sfid, result.conflicts, run_id, counts)
        if result.action in ("restore_local", "create_local"):
            remote = dict(remote)
            self._insert_local(conn, obj, tables, table, remote, row_uuid=entry.row_uuid)
            conn.execute(delete(self.state.changes).where(self.state.changes.c.row_uuid == entry.row_uuid))
            counts.created_local += 1
        # delete_remote: the push sends the delete logged by the trigger.

    def _insert_local(self, conn: Connection, obj: ObjectSchema, tables: dict[str, Table], table: Table,
                      remote: dict[str, Any], row_uuid: str | None = None,
                      batch: list[dict[str, Any]] | None = None, ref_maps: dict | None = None) -> None:
        """Insert a row for a record new to the portal; with `batch`, the row is queued for one
        multi-row insert per page instead (an initial load inserts hundreds of thousands)."""
        values = {f.column: remote.get(f.name) for f in obj.fields}
        om = self.mapping.objects[obj.name]
        if row_uuid:
            values["_uuid"] = row_uuid
        elif om.external_id and remote.get(om.external_id):
            values["_uuid"] = remote[om.external_id]
        if obj.synced:
            values.update(self._ref_uuids(conn, obj, tables, remote, ref_maps))
        base = {f.name: remote.get(f.name) for f in obj.fields if f.name not in SYSTEM_FIELDS}
        values.update(_base=self._encode_base(base), _sync_version=1, _synced_at=dt.datetime.now(UTC))
        if batch is not None:
            batch.append(values)
        else:
            conn.execute(table.insert().values(**values))

    def _linked_references(self, obj: ObjectSchema, tables: dict[str, Table]) -> list[tuple[FieldSchema, Table]]:
        return [(f, parent) for f in obj.references if f.name not in ("CreatedById", "LastModifiedById")
                for parent in [next((tables[p] for p in f.reference_to if p in tables), None)] if parent is not None]

    def _ref_maps(self, conn: Connection, obj: ObjectSchema, tables: dict[str, Table],
                  records: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
        """Per reference field, parent Id -> parent row UUID for one page, in one query per field."""
        if not obj.synced:
            return {}
        out: dict[str, dict[str, str]] = {}
        for f, parent in self._linked_references(obj, tables):
            wanted = list({r.get(f.name) for r in records if r.get(f.name)})
            found: dict[str, str] = {}
            for start in range(0, len(wanted), 500):
                found.update(conn.execute(select(parent.c.sfid, parent.c._uuid).where(
                    parent.c.sfid.in_(wanted[start:start + 500]))).all())
            out[f.name] = found
        return out

    def _ref_uuids(self, conn: Connection, obj: ObjectSchema, tables: dict[str, Table],
                   values: dict[str, Any], ref_maps: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
        """For a synced object, the `_<ref>_uuid` of each reference whose parent row is mirrored."""
        if not obj.synced:
            return {}
        out: dict[str, Any] = {}
        for f, parent in self._linked_references(obj, tables):
            parent_id = values.get(f.name)
            if not parent_id:
                continue
            if ref_maps is not None and f.name in ref_maps:
                uuid = ref_maps[f.name].get(parent_id)
            else:
                uuid = conn.execute(select(parent.c._uuid).where(parent.c.sfid == parent_id)).scalar()
            if uuid:
                out[ref_uuid_column(f)] = uuid
        return out

    def _delete_local(self, conn: Connection, table: Table, row_uuid: str) -> None:
        conn.execute(update(table).where(table.c._uuid == row_uuid).values(
            _sync_version=capture.CONNECTOR_DELETE_MARK))
        conn.execute(delete(table).where(table.c._uuid == row_uuid))
        conn.execute(delete(self.state.changes).where(self.state.changes.c.row_uuid == row_uuid))
        # Row UUIDs are unique across objects: a parked entry of a record gone from both sides goes too.
        conn.execute(delete(self.state.dead_letters).where(self.state.dead_letters.c.record_uuid == row_uuid))

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

    # -- push -------------------------------------------------------------------------------
    def _push(self, obj: ObjectSchema, tables: dict[str, Table], counts: ObjectCounts, run_id: int) -> None:  # noqa: C901
        table = tables[obj.name]
        om = self.mapping.objects[obj.name]
        by_name = fields_by_name(obj)
        ch = self.state.changes
        with self.engine.connect() as conn:
            snapshot = conn.execute(select(func.max(ch.c.id)).where(ch.c.object_name == obj.name)).scalar()
            if snapshot is None:
                return
            entries = conn.execute(select(ch.c.row_uuid, ch.c.sfid, ch.c.op, ch.c.changed_at, ch.c.base).where(
                and_(ch.c.object_name == obj.name, ch.c.id <= snapshot)).order_by(ch.c.id)).all()
            uuids = list(dict.fromkeys(e.row_uuid for e in entries))
            rows = {}
            for start in range(0, len(uuids), 500):
                for row in conn.execute(select(table).where(table.c._uuid.in_(uuids[start:start + 500]))):
                    rows[row._uuid] = dict(row._mapping)
        creates, updates, deletes, consumed, refused, held = [], [], [], [], [], set()
        settled: list[str] = []
        vanished: list[str] = []     # rows deleted locally that never reached Salesforce
        last_sfid = {e.row_uuid: e.sfid for e in entries if e.sfid}
        guards = self.guards.get(obj.name, [])
        with self.engine.connect() as conn:
            not_yet = self.ledger.not_due(conn, obj.name, uuids, self.client.org_now())
        counts.retrying += len(not_yet)
        with self.engine.connect() as conn:
            for row_uuid in uuids:
                if row_uuid in not_yet:
                    held.add(row_uuid)
                    continue
                row = rows.get(row_uuid)
                if row is None:
                    sfid = last_sfid.get(row_uuid)
                    if sfid and self._delete_meets_unseen_children(obj, tables, row_uuid, sfid, entries,
                                                                     counts, run_id):
                        consumed.append(row_uuid)
                    elif sfid:
                        deletes.append((row_uuid, sfid))
                    else:
                        consumed.append(row_uuid)     # created and deleted locally before it ever left
                        vanished.append(row_uuid)
                    continue
                base = self._decode_base(obj, row.get("_base")) if row["sfid"] is not None else None
                if row["sfid"] is None and not om.create:
                    refused.append((row_uuid, _refusal(
                        "CREATE_NOT_ALLOWED_BY_MAPPING", f"the mapping does not let the connector create "
                        f"{obj.name} records (create: false); create it in Salesforce, or allow creates in the "
                        "mapping")))
                    continue
                try:
                    payload = self._payload(obj, tables, row, base=base if row["sfid"] is not None else None)
                except MissingParent as exc:
                    refused.append((row_uuid, _refusal("PARENT_DELETED", str(exc))))
                    continue
                except NotSendable as exc:
                    refused.append((row_uuid, _refusal("NUMBER_OUTSIDE_VALID_RANGE", str(exc), fields=[exc.field])))
                    continue
                locked = self._not_updateable_edits(obj, row, base) if row["sfid"] is not None else []
                if locked:
                    refused.append((row_uuid, _refusal(
                        "FIELD_NOT_UPDATEABLE", f"the portal changed {', '.join(locked)}, which the integration user "
                        f"cannot update in Salesforce; undo the edit, or give the user edit access to the field "
                        f"and retry the parked record", fields=locked)))
                    continue
                decisions = [guard(conn, obj, tables, row, base) for guard in guards]
                refusal = next((d for d in decisions if d.park), None)
                if refusal is not None:
                    refused.append((row_uuid, _refusal(refusal.code, refusal.park)))
                    if refusal.retry:
                        held.add(row_uuid)
                    continue
                for decision in decisions:
                    if decision.revert:
                        payload = self._revert(obj, tables, row, base, decision, payload, counts, run_id)
                hold = set().union(*(d.hold for d in decisions)) if decisions else set()
                if hold & payload.keys():
                    # Waiting fields are not sent; the row stays pending until a guard lets them go.
                    held.add(row_uuid)
                    payload = {k: v for k, v in payload.items() if k not in hold}
                sent = self._sent_values(obj, row, payload, creating=row["sfid"] is None)
                if row["sfid"] is None:
                    if om.external_id:
                        payload[om.external_id] = row["_uuid"]
                    creates.append((row_uuid, payload, sent))
                elif payload:
                    updates.append((row_uuid, {"Id": row["sfid"], **payload}, sent))
                elif row_uuid not in held:
                    consumed.append(row_uuid)
                    settled.append(row_uuid)      # nothing left to send: a park of its edit is over
        counts.waiting += len(held - not_yet)
        self._held = held
        now = dt.datetime.now(UTC)
        with self.engine.begin() as conn:
            for row_uuid, result in refused:
                self.ledger.park(conn, obj.name, row_uuid, None, "create", result, now, table=table)
                counts.parked += 1
            self._consume(conn, obj.name, consumed + [u for u, _ in refused], snapshot)
            self.ledger.clear_parked(conn, obj.name, vanished)
            self.ledger.clear_parked(conn, obj.name, settled, keep_pulled=True)
        if creates:
            if om.external_id:
                results = self.client.save("upsert", obj.name, [p for _, p, _ in creates], external_id=om.external_id)
                results = self._retry_matched_upserts(obj, om, creates, results)
            else:
                results = self.client.save("create", obj.name, [p for _, p, _ in creates])
            self._hook("answered", object=obj.name, operation="create", sent=creates, results=results)
            self._record_results(obj, table, by_name, creates, results, "create", counts, snapshot, now)
        if updates:
            written = sorted({f for _, _, sent in updates for f in sent if f in by_name}
                             | ({"SystemModstamp"} if "SystemModstamp" in by_name else set()))
            results, before = self.client.update_reading_first(obj.name, [p for _, p, _ in updates], written)
            self._hook("answered", object=obj.name, operation="update", sent=updates, results=results)
            updates = self._judge_overwrites(obj, table, rows, updates, results, before, counts, run_id)
            self._record_results(obj, table, by_name, updates, results, "update", counts, snapshot, now)
        if deletes:
            results = self.client.delete([sfid for _, sfid in deletes])
            with self.engine.begin() as conn:
                done, gone = [], []
                for (row_uuid, sfid), result in zip(deletes, results):
                    codes = {e.get("statusCode") for e in result.get("errors", [])}
                    if result.get("success") or codes & {"ENTITY_IS_DELETED", "INVALID_CROSS_REFERENCE_KEY"}:
                        done.append(row_uuid)
                        gone.append(row_uuid)
                        counts.deleted_remote += 1
                    elif transient(result) and self.ledger.retry_later(conn, obj.name, row_uuid, result, self.client.org_now()):
                        counts.retrying += 1
                    else:
                        self.ledger.park(conn, obj.name, row_uuid, sfid, "delete", result if not transient(result)
                                   else gave_up(result), now, table=None)
                        counts.parked += 1
                        done.append(row_uuid)
                self.ledger.clear_retries(conn, obj.name, done)
                self._consume(conn, obj.name, done, snapshot)
                self.ledger.clear_parked(conn, obj.name, gone)

    def _delete_meets_unseen_children(self, obj: ObjectSchema, tables: dict[str, Table], row_uuid: str, sfid: str,
                                      entries: list[Any], counts: ObjectCounts, run_id: int) -> bool:
        """A portal delete of a master record cascades in Salesforce over its detail records: those the
        portal never saw (written here from Salesforce after the delete) make it an edit-vs-delete
        conflict of the master, decided by the object's record policy and logged. Returns True when
        Salesforce's side wins and the master is restored locally instead of deleted."""
        entry = next((e for e in reversed(entries) if e.row_uuid == row_uuid and e.op == "D"), None)
        # Detail records created in Salesforce since this run's read window opened reached the portal in
        # this run, after the delete was made: the portal cannot have seen them. (Those it was shown by an
        # earlier run, or that were only re-read, are not counted.)
        since = self._window_starts.get(obj.name)
        if entry is None or since is None:
            return False
        unseen: list[tuple[ObjectSchema, dict[str, Any]]] = []
        with self.engine.connect() as conn:
            for child in getattr(self, "_schemas", {}).values():
                for f in child.references:
                    if not f.cascade_delete or obj.name not in f.reference_to or child.name not in tables:
                        continue
                    created = child.field("CreatedDate")
                    if created is None:
                        continue
                    ct = tables[child.name]
                    child_since = self._window_starts.get(child.name) or since
                    for r in conn.execute(select(ct).where(and_(ct.c[f.column] == sfid,
                                                                ct.c[created.column] >= child_since))):
                        unseen.append((child, dict(r._mapping)))
        if not unseen:
            return False
        om = self.mapping.objects[obj.name]
        base = self._decode_base(obj, entry.base) or {}
        child_values = [{f.name: row.get(f.column) for f in child.fields if f.name not in SYSTEM_FIELDS}
                        for child, row in unseen]
        latest = max((row["_synced_at"] for _, row in unseen), default=None)
        resolution = get_policy(om.conflict_policy).resolve(FieldConflict(
            obj.name, sfid, None, base, None, base, entry.changed_at, latest))
        names = ", ".join(sorted({child.name for child, _ in unseen}))
        with self.engine.begin() as conn:
            if resolution.winner == "salesforce":
                self._insert_local(conn, obj, tables, tables[obj.name], {**base, "Id": sfid}, row_uuid=row_uuid)
                self._log(conn, obj, row_uuid, sfid, [Conflict(
                    field=None, base=base, local=None, remote=base, local_changed_at=entry.changed_at,
                    remote_changed_at=latest, policy=om.conflict_policy, winner="salesforce", value=base,
                    parked=resolution.parked, reason=f"deleted locally while Salesforce added or changed its {names} "
                    "records the portal had not seen: the delete is undone")], run_id, counts)
                counts.created_local += 1
                return True
            for (child, row), values in zip(unseen, child_values):
                self._log(conn, child, row["_uuid"], row.get("sfid"), [Conflict(
                    field=None, base=None, local=None, remote=values, local_changed_at=entry.changed_at,
                    remote_changed_at=row["_synced_at"], policy=om.conflict_policy, winner="local", value=None,
                    parked=resolution.parked, reason=f"its {obj.name} was deleted in the portal, which had not seen "
                    "this record; Salesforce deletes it with its master")], run_id, counts)
        return False

    def _judge_overwrites(self, obj: ObjectSchema, table: Table, rows: dict[str, dict[str, Any]],
                          updates: list[tuple[str, dict[str, Any], dict[str, Any]]], results: list[dict[str, Any]],
                          before: dict[str, dict[str, Any]], counts: ObjectCounts, run_id: int
                          ) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        """No lost update from Salesforce. Each update was read in the same composite call just before it
        ran (`update_reading_first`); a field it overwrote that Salesforce had changed since the base is a
        conflict like any other: the field's policy decides, the log keeps both values, and when
        Salesforce's value wins it is written back to Salesforce and to the portal row (unless the portal
        changed that row again meanwhile, which stays a change). Returns `updates` with the values the base
        is to take."""
        om = self.mapping.objects[obj.name]
        by_name = fields_by_name(obj)
        with self.engine.connect() as conn:
            dirty_at = self._dirty_uuids(conn, obj.name)
        out, restores, local_fixes = [], [], []
        for (row_uuid, payload, sent), result in zip(updates, results):
            found = before.get(payload["Id"])
            base = self._decode_base(obj, rows[row_uuid].get("_base")) or {}
            overwritten = [] if not result.get("success") or found is None else [
                f for f in sent if f in by_name
                and not values_equal(by_name[f].to_python(found.get(f)), base.get(f))
                and not values_equal(by_name[f].to_python(found.get(f)), sent[f])]
            if not overwritten:
                out.append((row_uuid, payload, sent))
                continue
            remote = {f: by_name[f].to_python(found.get(f)) for f in overwritten}
            result_ = merge_record(object_name=obj.name, record_key=payload["Id"], fields=overwritten,
                                   base={f: base.get(f) for f in overwritten}, local={f: sent[f] for f in overwritten},
                                   remote=remote, local_state="present", remote_state="present",
                                   policy_for=om.policy_for, record_policy=om.conflict_policy,
                                   local_changed_at=dirty_at.get(row_uuid) or dt.datetime.now(UTC),
                                   remote_changed_at=by_name["SystemModstamp"].to_python(found.get("SystemModstamp"))
                                   if "SystemModstamp" in by_name and found.get("SystemModstamp") else None,
                                   remote_writable=overwritten)
            with self.engine.begin() as conn:
                self._log(conn, obj, row_uuid, payload["Id"], result_.conflicts, run_id, counts)
            back = {f: v for f, v in result_.merged.items() if not values_equal(v, sent[f])}
            if back:
                restores.append({"Id": payload["Id"], **{f: _wire(by_name[f], v) for f, v in back.items()}})
                local_fixes.append((len(out), row_uuid, {f: (sent[f], v) for f, v in back.items()}))
            out.append((row_uuid, payload, {**sent, **back}))
        if restores:
            answers = self.client.save("update", obj.name, restores)
            confirmed = []
            for (index, row_uuid, fixes), answer in zip(local_fixes, answers):
                if answer.get("success"):
                    confirmed.append((row_uuid, fixes))
                else:   # Salesforce keeps the pushed value: so does the base; the conflict stays logged
                    out[index] = (out[index][0], out[index][1], updates[index][2])
                    log.warning("%s %s: writing Salesforce's value back failed: %s", obj.name, row_uuid,
                                answer.get("errors"))
            with self.engine.begin() as conn:
                for row_uuid, fixes in confirmed:
                    for name, (was, value) in fixes.items():
                        column = table.c[by_name[name].column]
                        # only where the row still holds what was sent: a newer portal edit stays a change
                        conn.execute(update(table).where(and_(table.c._uuid == row_uuid,
                                                              column.is_not_distinct_from(was)))
                                     .values({column: value, table.c._sync_version: table.c._sync_version + 1}))
        return out

    def _retry_matched_upserts(self, obj: ObjectSchema, om: ObjectMapping,
                               creates: list[tuple[str, dict[str, Any], dict[str, Any]]],
                               results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """A create sent again after its answer was lost matches the record it made, and Salesforce then
        refuses the create-only fields (a master-detail parent) as an update: send those records once
        more without them. The record exists once; nothing is lost, since it already holds them."""
        by_name = fields_by_name(obj)
        by_relationship = {f.relationship_name: f for f in obj.fields if f.relationship_name}
        retry = []
        for index, ((row_uuid, payload, _), result) in enumerate(zip(creates, results)):
            codes = {e.get("statusCode") for e in result.get("errors") or []}
            if not result.get("success") and codes == {"INVALID_FIELD_FOR_INSERT_UPDATE"}:
                reduced = {k: v for k, v in payload.items()
                           if k == om.external_id or (by_name.get(k) or by_relationship.get(k)) is None
                           or (by_name.get(k) or by_relationship.get(k)).updateable}
                retry.append((index, reduced))
        if not retry:
            return results
        again = self.client.save("upsert", obj.name, [p for _, p in retry], external_id=om.external_id)
        results = list(results)
        for (index, _), result in zip(retry, again):
            if result.get("success") and not result.get("created"):
                results[index] = result
        return results

    def _revert(self, obj: ObjectSchema, tables: dict[str, Table], row: dict[str, Any], base: dict[str, Any] | None,
                decision: PushDecision, payload: dict[str, Any], counts: ObjectCounts, run_id: int) -> dict[str, Any]:
        """Put refused local values back to the base on the local row, log each as a conflict, and
        leave them out of what is sent."""
        by_name = fields_by_name(obj)
        table = tables[obj.name]
        base = base or {}
        conflicts = [Conflict(field=name, base=base.get(name), local=row.get(by_name[name].column),
                              remote=base.get(name), local_changed_at=None, remote_changed_at=None,
                              policy=decision.policy, winner="salesforce", value=base.get(name), parked=False,
                              reason=decision.reason)
                     for name in decision.revert if name in by_name]
        with self.engine.begin() as conn:
            conn.execute(update(table).where(table.c._uuid == row["_uuid"]).values(
                _sync_version=table.c._sync_version + 1,
                **{by_name[c.field].column: c.value for c in conflicts}))
            self._log(conn, obj, row["_uuid"], row.get("sfid"), conflicts, run_id, counts)
        for c in conflicts:
            row[by_name[c.field].column] = c.value
        return {k: v for k, v in payload.items() if k not in decision.revert}

    def _not_updateable_edits(self, obj: ObjectSchema, row: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
        """Fields the portal changed since the base that the integration user cannot update: sending the
        rest and dropping these would count them as sent and leave the two sides apart for good."""
        base = base or {}
        return [f.name for f in obj.fields if f.name not in SYSTEM_FIELDS and not f.updateable and f.name in base
                and not values_equal(row.get(f.column), base[f.name])]

    def _payload(self, obj: ObjectSchema, tables: dict[str, Table], row: dict[str, Any],
                 base: dict[str, Any] | None) -> dict[str, Any]:
        """What to send: every createable value for a create, only changed updateable fields for an update."""
        out: dict[str, Any] = {}
        creating = base is None
        for f in obj.fields:
            if f.name in SYSTEM_FIELDS or not (f.createable if creating else f.updateable):
                continue
            value = row.get(f.column)
            if f.sf_type == "reference" and value is None:
                ref = self._parent_reference(f, tables, row)
                if ref is not None:
                    out[ref[0]] = ref[1]
                    continue
            nothing_to_send = value is None if creating else values_equal(value, base.get(f.name))
            if nothing_to_send:
                continue
            out[f.name] = _wire(f, value)
        return out

    def _parent_reference(self, f: FieldSchema, tables: dict[str, Table], row: dict[str, Any]):
        """A parent named by the portal through `_<ref>_uuid`: its Id when Salesforce has it, else a
        relationship reference by the parent's external ID, which Salesforce resolves itself."""
        column = ref_uuid_column(f)
        parent_uuid = row.get(column)
        if not parent_uuid or not f.relationship_name:
            return None
        for parent_name in f.reference_to:
            parent = tables.get(parent_name)
            if parent is None:
                continue
            with self.engine.connect() as conn:
                sfid = conn.execute(select(parent.c.sfid).where(parent.c._uuid == parent_uuid)).scalar()
            if sfid:
                return f.name, sfid
            with self.engine.connect() as conn:
                exists = conn.execute(select(parent.c._id).where(parent.c._uuid == parent_uuid)).first()
            if exists is None:
                raise MissingParent(f"its parent {parent_name} (portal row {parent_uuid}) was deleted, so it "
                                    "cannot be created in Salesforce; delete it or point it at another record")
            parent_mapping = self.mapping.objects.get(parent_name)
            if parent_mapping is not None and parent_mapping.external_id:
                return f.relationship_name, {parent_mapping.external_id: parent_uuid}
        return None

    def _sent_values(self, obj: ObjectSchema, row: dict[str, Any], payload: dict[str, Any], *,
                     creating: bool) -> dict[str, Any]:
        """The local values a payload carries, by field: what the base becomes once Salesforce confirms.
        A parent named by its external ID is not known by Id yet (None: the next pull fills it); for a
        create, every field not sent is None in the base, so a value the create could not carry (held,
        not createable) still counts as a change afterwards."""
        sent: dict[str, Any] = {}
        for f in obj.fields:
            if f.name in SYSTEM_FIELDS:
                continue
            if f.name in payload:
                sent[f.name] = row.get(f.column)
            elif creating or (f.relationship_name and f.relationship_name in payload):
                sent[f.name] = None
        return sent

    def _record_results(self, obj: ObjectSchema, table: Table, by_name: dict[str, FieldSchema],
                        sent: list[tuple[str, dict[str, Any], dict[str, Any]]], results: list[dict[str, Any]],
                        operation: str, counts: ObjectCounts, snapshot: int, now: dt.datetime) -> None:
        """Advance each confirmed record's base to exactly the values that were sent, never to the row as
        it is now: a portal write made while the push was in flight stays a change (its change-log entry
        is newer than the snapshot and is kept), and goes out next run."""
        with self.engine.begin() as conn:
            self._hook("recording", object=obj.name, operation=operation, sent=sent, results=results)
            done = []
            for (row_uuid, payload, values_sent), result in zip(sent, results):
                if result.get("success"):
                    row = conn.execute(select(table.c._base).where(table.c._uuid == row_uuid)).first()
                    if row is None:
                        continue
                    base = {} if operation == "create" else (self._decode_base(obj, row._base) or {})
                    base.update(values_sent)
                    values = dict(_sync_error=None, _synced_at=now, _sync_version=table.c._sync_version + 1)
                    if operation == "create":
                        values["sfid"] = result["id"]
                        om = self.mapping.objects[obj.name]
                        if om.external_id and by_name.get(om.external_id):
                            values[by_name[om.external_id].column] = row_uuid
                            base[om.external_id] = row_uuid
                    values["_base"] = self._encode_base(base)
                    conn.execute(update(table).where(table.c._uuid == row_uuid).values(**values))
                    self.ledger.clear_parked(conn, obj.name, [row_uuid], keep_pulled=True)
                    done.append(row_uuid)
                    if operation == "create":
                        counts.created_remote += 1
                    else:
                        counts.updated_remote += 1
                    continue
                errors = result.get("errors") or []
                if any("Foreign key external ID" in (e.get("message") or "") for e in errors):
                    counts.waiting += 1     # the parent is not in Salesforce yet; linked on a later run
                    continue
                if operation == "update" and {e.get("statusCode") for e in errors} == {"ENTITY_IS_DELETED"}:
                    # Deleted in Salesforce meanwhile: the change stays queued, and the next pull reads the
                    # delete and merges it with this edit (the edit-vs-delete policy, logged).
                    counts.waiting += 1
                    continue
                if transient(result):
                    if self.ledger.retry_later(conn, obj.name, row_uuid, result, self.client.org_now()):
                        counts.retrying += 1     # its change stays queued
                        continue
                    result = gave_up(result)
                self.ledger.park(conn, obj.name, row_uuid, payload.get("Id"), operation, result, now, table=table)
                counts.parked += 1
                done.append(row_uuid)
            self.ledger.clear_retries(conn, obj.name, done)
            self._consume(conn, obj.name, done, snapshot)

    def _consume(self, conn: Connection, name: str, row_uuids: list[str], snapshot: int) -> None:
        row_uuids = [u for u in row_uuids if u not in self._held]
        ch = self.state.changes
        for start in range(0, len(row_uuids), 500):
            conn.execute(delete(ch).where(and_(ch.c.object_name == name, ch.c.id <= snapshot,
                                               ch.c.row_uuid.in_(row_uuids[start:start + 500]))))

    # -- base -------------------------------------------------------------------------------
    def _encode_base(self, values: dict[str, Any]) -> str:
        return json.dumps({k: encode(v) for k, v in values.items()}, separators=(",", ":"), sort_keys=True)

    def _decode_base(self, obj: ObjectSchema, raw: str | None) -> dict[str, Any] | None:
        if not raw:
            return None
        by_name = fields_by_name(obj)
        out = {}
        for name, value in json.loads(raw).items():
            f = by_name.get(name)
            out[name] = f.to_python(value) if f is not None else value
        return out


class MissingParent(Exception):
    """A portal row names a parent row that no longer exists."""


class NotSendable(ValueError):
    """A local value Salesforce cannot hold as it is (it would refuse or round it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class PushDecision:
    """A guard's verdict on one record about to be sent: fields to hold back for now (the row
    stays pending and is looked at again next run), or a reason to park the whole record."""

    hold: frozenset[str] = frozenset()
    park: str | None = None
    code: str = "REFUSED_BY_CONNECTOR"
    # A parked record that stays pending: looked at again every run and sent once the guard
    # lets it through (e.g. once the other participants' splits make 100 again).
    retry: bool = False
    # Fields whose local value is refused and put back to the base (the other side's valid state),
    # logged as a conflict with `reason`.
    revert: frozenset[str] = frozenset()
    policy: str = ""
    reason: str = ""


RemoteGuard = Callable[[ObjectSchema, "dict[str, Any] | None", "dict[str, Any]"], "dict[str, str]"]
PushGuard = Callable[[Connection, ObjectSchema, dict[str, Table], dict[str, Any], dict[str, Any] | None],
                     PushDecision]


def _refusal(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields or []}]}


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


def fields_by_name(obj: ObjectSchema) -> dict[str, FieldSchema]:
    return {f.name: f for f in obj.fields}


def _wire(f: FieldSchema, value: Any) -> Any:
    """A local value as the REST API takes it."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return _exact_number(f, value)     # the client writes it as the exact JSON literal
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def _exact_number(f: FieldSchema, value: Decimal) -> Decimal | int:
    """A decimal as Salesforce takes it: exact, within the field's precision and scale, or refused
    (never rounded: Salesforce would round extra decimals and refuse extra integer digits)."""
    if not value.is_finite():
        raise NotSendable(f.name, f"{f.name}: {value} is not a number Salesforce can store")
    if f.precision:
        digits = max(value.adjusted() + 1, 0)
        if digits > f.precision - f.scale:
            raise NotSendable(f.name, f"{f.name}: {value} has {digits} digits before the decimal point; the field "
                                      f"holds {f.precision - f.scale} (precision {f.precision}, scale {f.scale})")
        if value != value.quantize(Decimal(1).scaleb(-f.scale), rounding="ROUND_DOWN"):
            raise NotSendable(f.name, f"{f.name}: {value} has more than {f.scale} decimal places, which Salesforce "
                                      "would round")
    if f.scale == 0 or value == value.to_integral_value():
        return int(value) if f.sf_type in ("int", "long") or f.scale == 0 else value
    return value
