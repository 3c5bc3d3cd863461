"""Push: send a snapshot of the local changes to Salesforce and record what it answered.

The change log is read up to a snapshot id; what is sent is built from the rows as they are
then, and the base of a confirmed record advances to exactly the values that were sent, never
to the row as it is afterwards, so a portal write made while the push is in flight keeps its
newer change-log entry and goes out next run. Updates are read in the same composite call
that writes them (`SalesforceClient.update_reading_first`), so a Salesforce edit the update
overwrote is a conflict the policy decides and the log keeps. Creates are upserts on the
external-ID field holding the row's UUID: a retry can never duplicate.

Push never reads Salesforce's changes into the portal (that is apply's) and never moves a
watermark; a per-record error is retried, waits or is parked, and never fails the run."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, and_, delete, func, select, update
from sqlalchemy.engine import Connection

from connector.mapping import ObjectMapping
from connector.schema_mirror.model import FieldSchema, ObjectSchema, ref_uuid_column
from connector.sync.apply import PagePlanner, restore_row
from connector.sync.ledger import gave_up, transient
from connector.sync.merge import Conflict, merge_record, values_equal
from connector.sync.policies import FieldConflict, get_policy
from connector.sync.report import ObjectCounts
from connector.sync.values import (SYSTEM_FIELDS, UTC, NotSendable, decode_base, encode_base, fields_by_name,
                                   wire)

if TYPE_CHECKING:
    from connector.sync.engine import SyncEngine

log = logging.getLogger("connector.sync")

__all__ = ["MissingParent", "PushDecision", "PushGuard", "Pusher"]


class MissingParent(Exception):
    """A portal row names a parent row that no longer exists."""


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


PushGuard = Callable[[Connection, ObjectSchema, dict[str, Table], dict[str, Any], dict[str, Any] | None],
                     PushDecision]


def _refusal(code: str, message: str, fields: list[str] | None = None) -> dict[str, Any]:
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": fields or []}]}


class Pusher:
    """The push of one run: `push` sends one object's snapshot. Made by the engine for each run,
    with the run's schemas and the start of each object's read window."""

    def __init__(self, sync: SyncEngine, schemas: dict[str, ObjectSchema],
                 window_starts: dict[str, dt.datetime | None]) -> None:
        self.sync, self.db, self.client = sync, sync.engine, sync.client
        self.mapping, self.state, self.ledger = sync.mapping, sync.state, sync.ledger
        self.schemas, self.window_starts = schemas, window_starts
        self._held: set[str] = set()

    def _log(self, conn: Connection, obj: ObjectSchema, row_uuid: str | None, sfid: str | None,
             conflicts: Iterable[Conflict], run_id: int, counts: ObjectCounts) -> None:
        counts.conflicts += self.ledger.log_conflicts(conn, obj.name, row_uuid, sfid, conflicts, run_id)

    def push(self, obj: ObjectSchema, tables: dict[str, Table], counts: ObjectCounts, run_id: int) -> None:  # noqa: C901
        table = tables[obj.name]
        om = self.mapping.objects[obj.name]
        by_name = fields_by_name(obj)
        ch = self.state.changes
        with self.db.connect() as conn:
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
        guards = self.sync.guards.get(obj.name, [])
        with self.db.connect() as conn:
            not_yet = self.ledger.not_due(conn, obj.name, uuids, self.client.org_now())
        counts.retrying += len(not_yet)
        with self.db.connect() as conn:
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
                base = decode_base(obj, row.get("_base")) if row["sfid"] is not None else None
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
        with self.db.begin() as conn:
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
            self.sync._hook("answered", object=obj.name, operation="create", sent=creates, results=results)
            self._record_results(obj, table, by_name, creates, results, "create", counts, snapshot, now)
        if updates:
            written = sorted({f for _, _, sent in updates for f in sent if f in by_name}
                             | ({"SystemModstamp"} if "SystemModstamp" in by_name else set()))
            results, before = self.client.update_reading_first(obj.name, [p for _, p, _ in updates], written)
            self.sync._hook("answered", object=obj.name, operation="update", sent=updates, results=results)
            updates = self._judge_overwrites(obj, table, rows, updates, results, before, counts, run_id)
            self._record_results(obj, table, by_name, updates, results, "update", counts, snapshot, now)
        if deletes:
            results = self.client.delete([sfid for _, sfid in deletes])
            with self.db.begin() as conn:
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
        since = self.window_starts.get(obj.name)
        if entry is None or since is None:
            return False
        unseen: list[tuple[ObjectSchema, dict[str, Any]]] = []
        with self.db.connect() as conn:
            for child in self.schemas.values():
                for f in child.references:
                    if not f.cascade_delete or obj.name not in f.reference_to or child.name not in tables:
                        continue
                    created = child.field("CreatedDate")
                    if created is None:
                        continue
                    ct = tables[child.name]
                    child_since = self.window_starts.get(child.name) or since
                    for r in conn.execute(select(ct).where(and_(ct.c[f.column] == sfid,
                                                                ct.c[created.column] >= child_since))):
                        unseen.append((child, dict(r._mapping)))
        if not unseen:
            return False
        om = self.mapping.objects[obj.name]
        base = decode_base(obj, entry.base) or {}
        child_values = [{f.name: row.get(f.column) for f in child.fields if f.name not in SYSTEM_FIELDS}
                        for child, row in unseen]
        latest = max((row["_synced_at"] for _, row in unseen), default=None)
        resolution = get_policy(om.conflict_policy).resolve(FieldConflict(
            obj.name, sfid, None, base, None, base, entry.changed_at, latest))
        names = ", ".join(sorted({child.name for child, _ in unseen}))
        with self.db.begin() as conn:
            if resolution.winner == "salesforce":
                restore_row(conn, PagePlanner(obj, tables, om), tables, {**base, "Id": sfid}, row_uuid,
                            dt.datetime.now(UTC))
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
        with self.db.connect() as conn:
            dirty_at = self.ledger.dirty_uuids(conn, obj.name)
        out, restores, local_fixes = [], [], []
        for (row_uuid, payload, sent), result in zip(updates, results):
            found = before.get(payload["Id"])
            base = decode_base(obj, rows[row_uuid].get("_base")) or {}
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
            with self.db.begin() as conn:
                self._log(conn, obj, row_uuid, payload["Id"], result_.conflicts, run_id, counts)
            back = {f: v for f, v in result_.merged.items() if not values_equal(v, sent[f])}
            if back:
                restores.append({"Id": payload["Id"], **{f: wire(by_name[f], v) for f, v in back.items()}})
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
            with self.db.begin() as conn:
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
        with self.db.begin() as conn:
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
            out[f.name] = wire(f, value)
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
            with self.db.connect() as conn:
                sfid = conn.execute(select(parent.c.sfid).where(parent.c._uuid == parent_uuid)).scalar()
            if sfid:
                return f.name, sfid
            with self.db.connect() as conn:
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
        with self.db.begin() as conn:
            self.sync._hook("recording", object=obj.name, operation=operation, sent=sent, results=results)
            done = []
            for (row_uuid, payload, values_sent), result in zip(sent, results):
                if result.get("success"):
                    row = conn.execute(select(table.c._base).where(table.c._uuid == row_uuid)).first()
                    if row is None:
                        continue
                    base = {} if operation == "create" else (decode_base(obj, row._base) or {})
                    base.update(values_sent)
                    values = dict(_sync_error=None, _synced_at=now, _sync_version=table.c._sync_version + 1)
                    if operation == "create":
                        values["sfid"] = result["id"]
                        om = self.mapping.objects[obj.name]
                        if om.external_id and by_name.get(om.external_id):
                            values[by_name[om.external_id].column] = row_uuid
                            base[om.external_id] = row_uuid
                    values["_base"] = encode_base(base)
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
