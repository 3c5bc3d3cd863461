"""Apply: merge a page of Salesforce records three-way (base, portal row, Salesforce record)
and say what to write, as a plan the engine executes in the page's transaction.

Three parts, in the order a page goes through them:

- `read_context` reads, in the caller's transaction and with the rows locked, everything the
  merge needs to know about the portal side (the rows, their pending changes and parks, the
  portal's own deletes, the parent rows the references name);
- `PagePlanner.plan` merges and returns a `PagePlan` (rows to insert, update and delete,
  conflicts to log, rows to queue for a push, change-log entries to drop, values to write
  back to Salesforce). It is pure: it never touches the database or Salesforce and calls
  back into nothing, so what it decides depends only on the page and the context;
- `execute` writes the plan, in the caller's transaction.

Apply never sends anything to Salesforce itself (the engine writes a plan's `restores`
back before the page commits) and never moves a watermark."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Table, and_, delete, select, update
from sqlalchemy.engine import Connection

from connector.mapping import ObjectMapping
from connector.schema_mirror.model import FieldSchema, ObjectSchema, ref_uuid_column
from connector.sync import capture
from connector.sync.ledger import Ledger
from connector.sync.merge import Conflict, MergeResult, merge_record
from connector.sync.report import ObjectCounts
from connector.sync.values import SYSTEM_FIELDS, decode_base, encode_base, fields_by_name

__all__ = ["PageContext", "PagePlan", "PagePlanner", "RemoteGuard", "delete_local", "execute", "read_context"]

# A rule on what arrives from Salesforce: fields whose new value is refused, with the reason; the
# org's record is put back to the base value both sides last agreed on.
RemoteGuard = Callable[[ObjectSchema, "dict[str, Any] | None", "dict[str, Any]"], "dict[str, str]"]


@dataclass
class PageContext:
    """The portal's side of one page, as read in the page's transaction."""

    local_rows: dict[str, dict[str, Any]]         # linked rows, by Salesforce Id
    by_uuid: dict[str, dict[str, Any]]            # rows a record names by its external ID, not linked yet
    dirty: dict[str, dt.datetime]                 # rows with unsent changes: time of the latest
    parked: set[str]                              # rows holding an edit Salesforce refused
    deleted_here: dict[str, Any]                  # the portal's pending deletes, by Salesforce Id
    ref_maps: dict[str, dict[str, str]]           # per reference field: parent Id -> parent row UUID
    masters: dict[tuple[str, str], set[str]]      # (master-detail field, parent object): Ids held locally


@dataclass
class PagePlan:
    """What applying one page writes locally (and back to Salesforce)."""

    inserts: list[dict[str, Any]] = field(default_factory=list)            # new rows' column values
    updates: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (row UUID, column values)
    deletes: list[str] = field(default_factory=list)                        # row UUIDs deleted locally
    conflicts: list[tuple[str | None, str | None, tuple[Conflict, ...]]] = field(default_factory=list)
    requeue: list[str] = field(default_factory=list)          # rows to send again (created again in Salesforce)
    drop_changes: list[str] = field(default_factory=list)     # rows whose change-log entries are settled
    restores: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (Id, values) put back in Salesforce
    counts: ObjectCounts = field(default_factory=ObjectCounts)

    def log(self, row_uuid: str | None, sfid: str | None, conflicts: Iterable[Conflict]) -> None:
        conflicts = tuple(conflicts)
        if conflicts:
            self.conflicts.append((row_uuid, sfid, conflicts))


def linked_references(obj: ObjectSchema, tables: dict[str, Table]) -> list[tuple[FieldSchema, Table]]:
    """The reference fields whose parent object is mirrored, with the parent's table."""
    return [(f, parent) for f in obj.references if f.name not in ("CreatedById", "LastModifiedById")
            for parent in [next((tables[p] for p in f.reference_to if p in tables), None)] if parent is not None]


class PagePlanner:
    """Merges the pages of one object; built once per object and run."""

    def __init__(self, obj: ObjectSchema, tables: dict[str, Table], om: ObjectMapping,
                 remote_guards: Iterable[RemoteGuard] = ()) -> None:
        self.obj, self.om, self.remote_guards = obj, om, list(remote_guards)
        self.by_name = fields_by_name(obj)
        self.ext_field = self.by_name.get(om.external_id) if om.external_id else None
        self.merge_fields = [f.name for f in obj.fields if f.name not in SYSTEM_FIELDS]
        self.writable = {f.name for f in obj.fields if (f.createable or f.updateable) and f.name not in SYSTEM_FIELDS}
        self.references = linked_references(obj, tables) if obj.synced else []

    def plan(self, records: list[dict[str, Any]], ctx: PageContext, now: dt.datetime) -> PagePlan:
        plan = PagePlan()
        for record in records:
            self._merge(record, ctx, plan, now)
        return plan

    def new_row(self, remote: dict[str, Any], ref_maps: dict[str, dict[str, str]], now: dt.datetime,
                row_uuid: str | None = None) -> dict[str, Any]:
        """A row for a record new to the portal (or put back under `row_uuid`), with its base."""
        obj = self.obj
        values = {f.column: remote.get(f.name) for f in obj.fields}
        if row_uuid:
            values["_uuid"] = row_uuid
        elif self.om.external_id and remote.get(self.om.external_id):
            values["_uuid"] = remote[self.om.external_id]
        values.update(self._ref_uuids(remote, ref_maps))
        base = {f.name: remote.get(f.name) for f in obj.fields if f.name not in SYSTEM_FIELDS}
        values.update(_base=encode_base(base), _sync_version=1, _synced_at=now)
        return values

    # -- one record ---------------------------------------------------------------------------
    def _merge(self, record: dict[str, Any], ctx: PageContext, plan: PagePlan, now: dt.datetime) -> None:
        obj, om = self.obj, self.om
        remote = {f.name: f.to_python(record.get(f.name)) for f in obj.fields}
        local = ctx.local_rows.get(record["Id"])
        if local is None and self.ext_field is not None and record.get(self.ext_field.name) in ctx.by_uuid:
            local = ctx.by_uuid[record[self.ext_field.name]]
        deleted = bool(remote.get("IsDeleted"))
        if local is None and record["Id"] in ctx.deleted_here:
            self._merge_local_delete(record["Id"], ctx.deleted_here[record["Id"]], remote, deleted, ctx, plan, now)
            return
        if local is None:
            if not deleted:
                plan.inserts.append(self.new_row(remote, ctx.ref_maps, now))
                plan.counts.created_local += 1
            return
        base = decode_base(obj, local.get("_base"))
        local_values = {f.name: local.get(f.column) for f in obj.fields}
        if base is None and local.get("sfid") is None:
            # The portal's create reached Salesforce but its answer did not (a crash, a lost reply):
            # what the create carried is agreed, so a value Salesforce filled in (a default owner) is
            # taken, and a portal edit made since still differs from it and wins as a local change.
            base = {n: (remote.get(n) if local_values.get(n) is not None else None) for n in self.merge_fields}
        # A parked row still holds the edit Salesforce refused: never overwritten without the log.
        is_dirty = obj.synced and (local["_uuid"] in ctx.dirty or local["_uuid"] in ctx.parked)
        result = merge_record(
            object_name=obj.name, record_key=record["Id"], fields=self.merge_fields, base=base,
            local=local_values, remote=remote, local_state="present",
            remote_state="deleted" if deleted else "present",
            policy_for=om.policy_for, record_policy=om.conflict_policy,
            local_changed_at=ctx.dirty.get(local["_uuid"]), remote_changed_at=remote.get("SystemModstamp"),
            remote_writable=self.writable if obj.synced else (), local_dirty=is_dirty)
        refused: dict[str, str] = {}
        for guard in self.remote_guards:
            refused.update(guard(obj, base, remote))
        if refused:
            result = self._undo_remote(result, base, remote, refused, record["Id"], plan)
        plan.log(local["_uuid"], record["Id"], result.conflicts)
        if result.action == "delete_local":
            plan.deletes.append(local["_uuid"])
            plan.counts.deleted_local += 1
            return
        if result.action == "restore_remote" and self._master_gone(local_values, ctx):
            # A master-detail child cannot come back without its master: it follows the parent's
            # delete, and the portal's edit stays in the conflict log.
            plan.log(local["_uuid"], record["Id"], [Conflict(
                field=None, base=None, local=local_values, remote=None, local_changed_at=ctx.dirty.get(local["_uuid"]),
                remote_changed_at=remote.get("SystemModstamp"), policy=om.conflict_policy, winner="salesforce",
                value=None, parked=False, reason="its master record was deleted in Salesforce, so the record "
                "cannot be restored; the portal's values are kept here")])
            plan.deletes.append(local["_uuid"])
            plan.counts.deleted_local += 1
            return
        if result.action == "restore_remote":
            # The local edit wins over a Salesforce delete: the row is created again from its values.
            plan.updates.append((local["_uuid"], {"sfid": None, "_base": None}))
            plan.requeue.append(local["_uuid"])
            return
        new_local = dict(result.to_local)
        # System fields always follow Salesforce; they are never merged.
        for name in SYSTEM_FIELDS:
            if name in self.by_name and name != "IsDeleted":
                new_local[name] = remote.get(name)
        agreed = dict(result.merged)
        for name in result.to_remote:     # not yet in Salesforce: keep the old base so push sends it
            agreed[name] = (base or {}).get(name)
        values = {self.by_name[n].column: v for n, v in new_local.items() if n in self.by_name}
        values.update(self._ref_uuids({**local_values, **new_local}, ctx.ref_maps))
        values.update(sfid=record["Id"], _base=encode_base(agreed), _synced_at=now)
        plan.updates.append((local["_uuid"], values))
        if result.to_local:
            plan.counts.updated_local += 1

    def _merge_local_delete(self, sfid: str, entry: Any, remote: dict[str, Any], remote_deleted: bool,
                            ctx: PageContext, plan: PagePlan, now: dt.datetime) -> None:
        """A row deleted in the portal whose record Salesforce also changed: merge the delete."""
        if remote_deleted:
            plan.drop_changes.append(entry.row_uuid)
            return
        om = self.om
        result = merge_record(
            object_name=self.obj.name, record_key=sfid, fields=self.merge_fields,
            base=decode_base(self.obj, entry.base), local=None, remote=remote, local_state="deleted",
            remote_state="present", policy_for=om.policy_for, record_policy=om.conflict_policy,
            local_changed_at=entry.changed_at, remote_changed_at=remote.get("SystemModstamp"),
            remote_writable=self.writable, local_dirty=True)
        plan.log(entry.row_uuid, sfid, result.conflicts)
        if result.action in ("restore_local", "create_local"):
            plan.inserts.append(self.new_row(remote, ctx.ref_maps, now, row_uuid=entry.row_uuid))
            plan.drop_changes.append(entry.row_uuid)
            plan.counts.created_local += 1
        # delete_remote: the push sends the delete logged by the trigger.

    def _undo_remote(self, result: MergeResult, base: dict[str, Any] | None, remote: dict[str, Any],
                     refused: dict[str, str], sfid: str, plan: PagePlan) -> MergeResult:
        """Keep the base value of refused fields on both sides: the portal keeps it, and the org's
        record is written back to it before the page commits."""
        base = base or {}
        restore = {name: base.get(name) for name in refused}
        conflicts = [Conflict(field=name, base=base.get(name), local=base.get(name), remote=remote.get(name),
                              local_changed_at=None, remote_changed_at=remote.get("SystemModstamp"),
                              policy="remote_guard", winner="local", value=base.get(name), parked=False,
                              reason=reason) for name, reason in refused.items()]
        plan.restores.append((sfid, restore))
        return replace(result, merged={**result.merged, **restore},
                       to_local={k: v for k, v in result.to_local.items() if k not in refused},
                       conflicts=tuple(result.conflicts) + tuple(conflicts))

    def _master_gone(self, values: dict[str, Any], ctx: PageContext) -> bool:
        for f in self.obj.references:
            parent_id = values.get(f.name)
            if f.cascade_delete and parent_id and any(
                    parent_id not in ctx.masters[(f.name, p)] for p in f.reference_to if (f.name, p) in ctx.masters):
                return True
        return False

    def _ref_uuids(self, values: dict[str, Any], ref_maps: dict[str, dict[str, str]]) -> dict[str, Any]:
        """For a synced object, the `_<ref>_uuid` of each reference whose parent row is mirrored."""
        out: dict[str, Any] = {}
        for f, _ in self.references:
            uuid = ref_maps.get(f.name, {}).get(values.get(f.name)) if values.get(f.name) else None
            if uuid:
                out[ref_uuid_column(f)] = uuid
        return out


# -- the two ends that touch the database ---------------------------------------------------------------
def read_context(conn: Connection, obj: ObjectSchema, tables: dict[str, Table], om: ObjectMapping,
                 records: list[dict[str, Any]], ledger: Ledger) -> PageContext:
    """The portal's side of a page. The rows are read locked (FOR UPDATE on PostgreSQL; on SQLite the
    caller took the write lock first): a portal write to one of them waits for the page to commit and
    lands on top of it as a change, instead of being overwritten by values merged from before it."""
    table = tables[obj.name]
    ext_field = fields_by_name(obj).get(om.external_id) if om.external_id else None
    ids = [r["Id"] for r in records]
    local_rows = {row.sfid: dict(row._mapping) for row in conn.execute(
        select(table).where(table.c.sfid.in_(ids)).order_by(table.c._id).with_for_update())} if ids else {}
    ext_values = [r.get(ext_field.name) for r in records if ext_field and r.get(ext_field.name)
                  and r["Id"] not in local_rows]
    by_uuid = {row._uuid: dict(row._mapping) for row in conn.execute(
        select(table).where(table.c._uuid.in_(ext_values)).order_by(table.c._id).with_for_update())} \
        if ext_values else {}
    synced = obj.synced
    dirty = ledger.dirty_uuids(conn, obj.name) if synced else {}
    parked = ledger.parked_among(conn, obj.name, [row["_uuid"] for row in local_rows.values()]) if synced else set()
    ch = ledger.tables.changes
    deleted_here = {r.sfid: r for r in conn.execute(
        select(ch.c.row_uuid, ch.c.sfid, ch.c.changed_at, ch.c.base).where(and_(
            ch.c.object_name == obj.name, ch.c.op == "D", ch.c.sfid.in_(ids))))} if synced and ids else {}
    rows = [*local_rows.values(), *by_uuid.values()]
    named = [*records, *({f.name: row.get(f.column) for f in obj.references} for row in rows)]
    ref_maps = _ref_maps(conn, obj, tables, named) if synced else {}
    masters: dict[tuple[str, str], set[str]] = {}
    if rows and any(r.get("IsDeleted") for r in records):
        # Only a Salesforce delete can meet a portal edit that would bring a detail record back.
        for f in obj.references:
            wanted = list({row.get(f.column) for row in rows if row.get(f.column)}) if f.cascade_delete else []
            for parent_name in f.reference_to if wanted else ():
                parent = tables.get(parent_name)
                if parent is not None:
                    masters[(f.name, parent_name)] = _present(conn, parent, wanted)
    return PageContext(local_rows, by_uuid, dirty, parked, deleted_here, ref_maps, masters)


def _present(conn: Connection, table: Table, sfids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(sfids), 500):
        found.update(conn.execute(select(table.c.sfid).where(table.c.sfid.in_(sfids[start:start + 500]))).scalars())
    return found


def _ref_maps(conn: Connection, obj: ObjectSchema, tables: dict[str, Table],
              records: Iterable[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Per reference field, parent Id -> parent row UUID for the Ids the page names, one query per
    field and 500 Ids."""
    records = list(records)
    out: dict[str, dict[str, str]] = {}
    for f, parent in linked_references(obj, tables):
        wanted = list({r.get(f.name) for r in records if r.get(f.name)})
        found: dict[str, str] = {}
        for start in range(0, len(wanted), 500):
            found.update(conn.execute(select(parent.c.sfid, parent.c._uuid).where(
                parent.c.sfid.in_(wanted[start:start + 500]))).all())
        out[f.name] = found
    return out


def restore_row(conn: Connection, planner: PagePlanner, tables: dict[str, Table], remote: dict[str, Any],
                row_uuid: str, now: dt.datetime) -> None:
    """Put a row back under its UUID from the values both sides last agreed on (a portal delete undone)."""
    obj = planner.obj
    ref_maps = _ref_maps(conn, obj, tables, [remote]) if obj.synced else {}
    conn.execute(tables[obj.name].insert().values(**planner.new_row(remote, ref_maps, now, row_uuid=row_uuid)))


def execute(conn: Connection, obj: ObjectSchema, table: Table, plan: PagePlan, ledger: Ledger, run_id: int,
            queue_for_push: Callable[[Connection, str, str], None]) -> None:
    """Write a page's plan in the caller's transaction (its `restores` are the caller's to send)."""
    for row_uuid, sfid, conflicts in plan.conflicts:
        plan.counts.conflicts += ledger.log_conflicts(conn, obj.name, row_uuid, sfid, conflicts, run_id)
    for row_uuid in plan.deletes:
        delete_local(conn, table, row_uuid, ledger)
    for row_uuid, values in plan.updates:
        conn.execute(update(table).where(table.c._uuid == row_uuid).values(
            **values, _sync_version=table.c._sync_version + 1))
    # One multi-row insert per set of columns (rows carrying their own _uuid differ from the rest).
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in plan.inserts:
        groups.setdefault(tuple(sorted(row)), []).append(row)
    for rows in groups.values():
        conn.execute(table.insert(), rows)
    ch = ledger.tables.changes
    for row_uuid in plan.drop_changes:
        conn.execute(delete(ch).where(ch.c.row_uuid == row_uuid))
    for row_uuid in plan.requeue:
        queue_for_push(conn, obj.name, row_uuid)


def delete_local(conn: Connection, table: Table, row_uuid: str, ledger: Ledger) -> None:
    """Delete a row as the connector (the capture triggers let it pass), with its pending changes and
    parked entry: the record is gone from both sides."""
    conn.execute(update(table).where(table.c._uuid == row_uuid).values(_sync_version=capture.CONNECTOR_DELETE_MARK))
    conn.execute(delete(table).where(table.c._uuid == row_uuid))
    conn.execute(delete(ledger.tables.changes).where(ledger.tables.changes.c.row_uuid == row_uuid))
    # Row UUIDs are unique across objects: a parked entry of a record gone from both sides goes too.
    conn.execute(delete(ledger.tables.dead_letters).where(ledger.tables.dead_letters.c.record_uuid == row_uuid))
