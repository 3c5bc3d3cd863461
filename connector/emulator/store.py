"""The emulated org's records and the rules a real org applies when they change:
validation with the real error codes, server-set audit fields at whole-second
precision, soft delete to the recycle bin, the delete log, external-ID
uniqueness, master-detail cascades and territory assignment rules.

It knows nothing of HTTP; the server translates its errors into responses.
Every public method takes the store lock, so the HTTP threads and a test
acting as a Salesforce user never see half a change."""

from __future__ import annotations

import datetime as dt
import re
import itertools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.emulator import ids
from connector.emulator.orgdef import (FieldDef, ObjectDef, OrgDef, PicklistValue, TEXT_TYPES)
from connector.emulator.values import DECIMAL_TYPES, CoercionError, coerce, exact_decimal, wire_datetime

DELETE_LOG_RETENTION = dt.timedelta(days=15)
_TERRITORY_RULE_OBJECTS = frozenset({"Territory2Model", "ObjectTerritory2AssignmentRule",
                                     "ObjectTerritory2AssignmentRuleItem", "RuleTerritory2Association"})


class Clock:
    """The org's time: real UTC time at whole seconds, which tests may move forward."""

    def __init__(self) -> None:
        self._offset = dt.timedelta(0)

    def now(self) -> dt.datetime:
        return dt.datetime.now(dt.timezone.utc).replace(microsecond=0) + self._offset

    def precise(self) -> dt.datetime:
        """The org's time to the microsecond (change events' commitTimestamp is in milliseconds)."""
        return dt.datetime.now(dt.timezone.utc) + self._offset

    def advance(self, delta: dt.timedelta) -> None:
        self._offset += delta


@dataclass
class SaveError:
    """One error on one record, as `errors[]` of a save result holds it."""

    code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def as_collection_item(self) -> dict[str, Any]:
        return {"statusCode": self.code, "message": self.message, "fields": self.fields}

    def as_rest(self) -> dict[str, Any]:
        return {"message": self.message, "errorCode": self.code, "fields": self.fields}


class RecordError(Exception):
    """A save the org refused; `status` is what a single-record REST call answers."""

    def __init__(self, errors: list[SaveError], status: int = 400):
        super().__init__("; ".join(f"{e.code}: {e.message}" for e in errors))
        self.errors, self.status = errors, status


def _err(code: str, message: str, fields: list[str] | None = None, status: int = 400) -> RecordError:
    return RecordError([SaveError(code, message, fields or [])], status)


@dataclass(frozen=True)
class RecordChange:
    """One save as Change Data Capture sees it once its unit commits: the fields it changed with
    their new values (the whole record for a create or an undelete, nothing for a delete)."""

    object_name: str
    change_type: str  # CREATE, UPDATE, DELETE, UNDELETE
    record_id: str
    values: dict[str, Any]


@dataclass
class DeletedEntry:
    id: str
    deleted_date: str


class Transaction:
    """Undo journal of one all-or-none unit: the first image of every record it touched."""

    def __init__(self, store: Store, parent: Transaction | None) -> None:
        self.store, self.parent = store, parent
        self.saved: dict[tuple[str, str], dict[str, Any] | None] = {}
        self.log_lengths = {name: len(log) for name, log in store._deleted_log.items()}
        self.autonumber = dict(store._autonumber)
        self.rolled_back = False
        self.changes: list[RecordChange] = []

    def remember(self, object_name: str, record_id: str) -> None:
        key = (object_name, record_id)
        if key not in self.saved:
            current = self.store._records[object_name].get(record_id)
            self.saved[key] = dict(current) if current is not None else None

    def rollback(self) -> None:
        """Put every touched record back as it was when the unit began."""
        store = self.store
        for (object_name, record_id), image in reversed(list(self.saved.items())):
            obj = store.org.get_object(object_name)
            table = store._records[object_name]
            current = table.get(record_id)
            if current is not None:
                store._unindex(obj, current)
                del table[record_id]
            if image is not None:
                table[record_id] = image
                if not image.get("IsDeleted"):
                    store._index(obj, image)
        for name, length in self.log_lengths.items():
            del store._deleted_log[name][length:]
        store._autonumber = dict(self.autonumber)
        for object_name, _ in self.saved:
            store._territory_inputs_changed(object_name, None)
        self.saved.clear()
        self.changes.clear()
        self.rolled_back = True

    def merge_into_parent(self) -> None:
        if self.parent is not None:
            for key, image in self.saved.items():
                self.parent.saved.setdefault(key, image)
            self.parent.changes.extend(self.changes)


class Store:
    """All records of one org, by object, in insertion order."""

    def __init__(self, org: OrgDef, clock: Clock | None = None) -> None:
        self.org = org
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self._records: dict[str, dict[str, dict[str, Any]]] = {o.name: {} for o in org.objects}
        self._unique: dict[tuple[str, str], dict[str, str]] = {}
        self._deleted_log: dict[str, list[DeletedEntry]] = {o.name: [] for o in org.objects}
        self._earliest_delete: dict[str, str] = {}
        self._allocator = ids.IdAllocator()
        self._refs: dict[str, str] = {}
        self._autonumber: dict[str, int] = {}
        self._rule_cache: dict[tuple[str, str], Any] = {}
        started = self.clock.now()
        self.created_at = started
        self.metadata_modified: dict[str, dt.datetime] = {o.name: started for o in org.objects}
        self.global_modified = started
        self.current_user_id: str | None = None
        self._tx: Transaction | None = None
        # Called with the changes of each committed unit, in commit order, under the store's lock
        # (the Pub/Sub side turns them into change events).
        self.change_listeners: list[Callable[[list[RecordChange]], None]] = []
        self._job_ids = itertools.count(1)
        # Territory assignment runs on every Account save, so its inputs are cached and the
        # rule-made associations are indexed by account instead of scanned.
        self._rules_cache: list[tuple[dict[str, Any], list[dict[str, Any]], list[str]]] | None = None
        self._assoc_index: dict[str, set[str]] | None = None
        for obj in org.objects:
            self._earliest_delete[obj.name] = wire_datetime(started)
            self._index_unique_fields(obj)

    # -- time -------------------------------------------------------------------------------
    def now(self) -> dt.datetime:
        return self.clock.now()

    def now_wire(self) -> str:
        return wire_datetime(self.clock.now())

    # -- all-or-none units ------------------------------------------------------------------
    @contextmanager
    def atomic(self) -> Iterator[Transaction]:
        """A unit of saves that is undone whole if it raises or calls `rollback()`."""
        with self.lock:
            tx = Transaction(self, self._tx)
            self._tx = tx
            try:
                yield tx
            except BaseException:
                tx.rollback()
                raise
            finally:
                self._tx = tx.parent
            if not tx.rolled_back:
                tx.merge_into_parent()
                if tx.parent is None and tx.changes:
                    self._committed(tx.changes)

    def _remember(self, object_name: str, record_id: str) -> None:
        if self._tx is not None:
            self._tx.remember(object_name, record_id)

    def _changed(self, obj: ObjectDef, change_type: str, record: dict[str, Any], values: dict[str, Any]) -> None:
        change = RecordChange(obj.name, change_type, record["Id"], dict(values))
        if self._tx is not None:
            self._tx.changes.append(change)
        else:
            self._committed([change])

    def _committed(self, changes: list[RecordChange]) -> None:
        for listener in self.change_listeners:
            listener(changes)

    def new_job_id(self) -> str:
        return ids.make_id("750", next(self._job_ids))

    # -- lookups ----------------------------------------------------------------------------
    def obj(self, name: str) -> ObjectDef:
        obj = self.org.get_object(name)
        if obj is None:
            raise _err("NOT_FOUND", "The requested resource does not exist", status=404)
        return obj

    def new_id(self, object_name: str) -> str:
        return self._allocator.next(self.obj(object_name).key_prefix)

    def get(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        """A record by Id, soft-deleted ones included (callers check IsDeleted)."""
        with self.lock:
            table = self._records.get(self.obj(object_name).name, {})
            return table.get(ids.to18(record_id)) if ids.is_valid(record_id) else None

    def fetch(self, object_name: str, record_id: str) -> dict[str, Any] | None:
        obj = self.org.get_object(object_name)
        if obj is None or not isinstance(record_id, str) or not ids.is_valid(record_id):
            return None
        return self._records[obj.name].get(ids.to18(record_id))

    def object_of_id(self, record_id: str) -> ObjectDef | None:
        return self.org.object_by_prefix(record_id[:3]) if isinstance(record_id, str) else None

    def scan(self, object_name: str, include_deleted: bool = False) -> Iterator[dict[str, Any]]:
        """Records of an object in insertion order; the caller holds the lock for a stable view."""
        for record in self._records[self.obj(object_name).name].values():
            if include_deleted or not record.get("IsDeleted"):
                yield record

    def ids(self, object_name: str) -> list[str]:
        with self.lock:
            return [r["Id"] for r in self.scan(object_name)]

    def find(self, object_name: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.scan(object_name) if r.get(field_name) == value]

    def count(self, object_name: str, include_deleted: bool = False) -> int:
        with self.lock:
            return sum(1 for _ in self.scan(object_name, include_deleted))

    def ref(self, name: str) -> str:
        """The Id of a seed record named with `_ref`."""
        return self._refs[name]

    # -- unique / external-id indexes -------------------------------------------------------
    def _index_unique_fields(self, obj: ObjectDef) -> None:
        for f in obj.fields:
            if f.unique or f.external_id:
                self._unique.setdefault((obj.name, f.name), {})

    def _unique_key(self, fdef: FieldDef, value: Any) -> Any:
        if isinstance(value, str) and not fdef.case_sensitive:
            return value.lower()
        return value

    def find_by_external_id(self, object_name: str, field_name: str, value: Any) -> list[dict[str, Any]]:
        obj = self.obj(object_name)
        fdef = obj.field(field_name)
        with self.lock:
            if fdef is not None and fdef.type == "id":
                rec = self.get(obj.name, value) if isinstance(value, str) else None
                return [rec] if rec and not rec.get("IsDeleted") else []
            index = self._unique.get((obj.name, fdef.name if fdef else ""), None)
            if index is None:
                return []
            rid = index.get(self._unique_key(fdef, value))
            rec = self._records[obj.name].get(rid) if rid else None
            return [rec] if rec and not rec.get("IsDeleted") else []

    # -- saves ------------------------------------------------------------------------------
    def create(self, object_name: str, values: dict[str, Any], *, record_id: str | None = None,
               skip_validation: bool = False) -> str:
        obj = self.obj(object_name)
        with self.lock:
            if not obj.createable:
                raise _err("INVALID_TYPE", f"Cannot create a new record for {obj.name}", status=400)
            record = self._prepare(obj, values, creating=True)
            self._apply_defaults(obj, record)
            _derive(obj, record)
            self._check_required(obj, record)
            if not skip_validation:
                self._run_validation_rules(obj, record)
            self._check_unique(obj, record, None)
            now = self.now_wire()
            record["Id"] = record_id or self.new_id(obj.name)
            self._stamp(obj, record, now, creating=True)
            self._store(obj, record)
            self._after_save(obj, record)
            self._changed(obj, "CREATE", record, record)
            return record["Id"]

    def update(self, object_name: str, record_id: str, values: dict[str, Any], *,
               skip_validation: bool = False) -> None:
        obj = self.obj(object_name)
        with self.lock:
            current = self._live(obj, record_id)
            if not obj.updateable:
                raise _err("INVALID_TYPE", f"Cannot update a record of {obj.name}")
            changes = self._prepare(obj, values, creating=False)
            _derive(obj, {**current, **changes}, changes)
            merged = {**current, **changes}
            self._check_required(obj, merged)
            if not skip_validation:
                self._run_validation_rules(obj, merged)
            self._check_unique(obj, merged, current["Id"])
            self._remember(obj.name, current["Id"])
            self._unindex(obj, current)
            if obj.name == "ObjectTerritory2Association":
                self._assoc_index = None
            before = dict(current)
            current.update(changes)
            self._stamp(obj, current, self.now_wire(), creating=False)
            self._index(obj, current)
            self._territory_inputs_changed(obj.name, current)
            self._after_save(obj, current)
            self._changed(obj, "UPDATE", current, {k: v for k, v in current.items() if before.get(k) != v})

    def upsert(self, object_name: str, field_name: str, value: Any, values: dict[str, Any]) -> tuple[str, bool]:
        """Insert or update by external ID; (Id, created). More than one match is a 300."""
        obj = self.obj(object_name)
        fdef = obj.field(field_name)
        if fdef is None or not (fdef.external_id or fdef.type == "id" or fdef.id_lookup):
            raise _err("INVALID_FIELD",
                       f"Provided external ID field does not exist or is not accessible: {field_name}",
                       status=404 if fdef is None else 400)
        with self.lock:
            matches = self.find_by_external_id(obj.name, fdef.name, value) if value not in (None, "") else []
            body = {k: v for k, v in values.items() if k.lower() != fdef.name.lower()}
            if matches:
                self.update(obj.name, matches[0]["Id"], body)
                return matches[0]["Id"], False
            if fdef.type != "id":
                body[fdef.name] = value
            return self.create(obj.name, body), True

    def delete(self, object_name: str, record_id: str) -> None:
        obj = self.obj(object_name)
        with self.lock:
            record = self._live(obj, record_id)
            if not obj.deletable:
                raise _err("INSUFFICIENT_ACCESS_OR_READONLY",
                           "insufficient access rights on object id", status=400)
            self._delete_record(obj, record, self.now_wire())

    def _delete_record(self, obj: ObjectDef, record: dict[str, Any], when: str) -> None:
        for child, fdef in self._cascade_children(obj):
            for child_rec in list(self.scan(child.name)):
                if child_rec.get(fdef.name) == record["Id"]:
                    self._delete_record(child, child_rec, when)
        self._remember(obj.name, record["Id"])
        self._unindex(obj, record)
        if obj.has_is_deleted:
            record["IsDeleted"] = True
            record["SystemModstamp"] = when
            if "LastModifiedDate" in record:
                record["LastModifiedDate"] = when
        else:
            del self._records[obj.name][record["Id"]]
        self._territory_inputs_changed(obj.name, record)
        self._deleted_log[obj.name].append(DeletedEntry(record["Id"], when))
        self._changed(obj, "DELETE", record, {})
        if obj.name == "Account":
            self._drop_territory_associations(record["Id"])

    def undelete(self, object_name: str, record_id: str) -> None:
        obj = self.obj(object_name)
        with self.lock:
            record = self.get(obj.name, record_id)
            if record is None or not record.get("IsDeleted"):
                raise _err("UNDELETE_FAILED", "Entity is not in the recycle bin")
            self._check_unique(obj, record, record["Id"])
            self._remember(obj.name, record["Id"])
            record["IsDeleted"] = False
            self._stamp(obj, record, self.now_wire(), creating=False)
            self._deleted_log[obj.name] = [e for e in self._deleted_log[obj.name] if e.id != record["Id"]]
            self._index(obj, record)
            self._changed(obj, "UNDELETE", record, record)

    def _cascade_children(self, obj: ObjectDef) -> Iterator[tuple[ObjectDef, FieldDef]]:
        for child in self.org.objects:
            for f in child.fields:
                if f.master_detail and obj.name in f.reference_to:
                    yield child, f

    def _live(self, obj: ObjectDef, record_id: str) -> dict[str, Any]:
        if not ids.is_valid(record_id):
            raise _err("MALFORMED_ID", f"{obj.label_text} ID: id value of incorrect type: {record_id}",
                       ["Id"], status=400)
        record = self._records[obj.name].get(ids.to18(record_id))
        if record is None:
            raise _err("NOT_FOUND", "The requested resource does not exist", status=404)
        if record.get("IsDeleted"):
            raise _err("ENTITY_IS_DELETED", "entity is deleted", [], status=404)
        return record

    def _prepare(self, obj: ObjectDef, values: dict[str, Any], *, creating: bool) -> dict[str, Any]:
        out: dict[str, Any] = {}
        not_writable: list[str] = []
        for key, value in values.items():
            if key == "attributes":
                continue
            fdef = obj.field(key)
            if fdef is None and isinstance(value, dict) and obj.relationship(key) is not None:
                # A parent named by its external ID: {"Opportunity__r": {"Portal_Id__c": "..."}}.
                fdef = obj.relationship(key)
                value = self._resolve_external_reference(fdef, value)
            if fdef is None:
                raise _err("INVALID_FIELD", f"No such column '{key}' on sobject of type {obj.name}")
            if fdef.type == "id":
                if not creating or value is None:
                    continue
                raise _err("INVALID_FIELD_FOR_INSERT_UPDATE",
                           "Unable to create/update fields: Id. Please check the security settings of this "
                           "field and verify that it is read/write for your profile or permission set.", ["Id"])
            if (creating and not fdef.createable) or (not creating and not fdef.updateable):
                not_writable.append(fdef.name)
                continue
            try:
                out[fdef.name] = self._coerce(obj, fdef, value)
            except CoercionError as exc:
                raise RecordError([SaveError(exc.code, exc.message, exc.fields)]) from exc
        if not_writable:
            raise _err("INVALID_FIELD_FOR_INSERT_UPDATE",
                       f"Unable to create/update fields: {', '.join(not_writable)}. Please check the security "
                       "settings of this field and verify that it is read/write for your profile or "
                       "permission set.", not_writable)
        return out

    def _resolve_external_reference(self, fdef: FieldDef, value: dict[str, Any]) -> str:
        keys = [k for k in value if k != "attributes"]
        target_name = (value.get("attributes") or {}).get("type") or fdef.reference_to[0]
        target = self.org.get_object(target_name)
        if len(keys) != 1 or target is None:
            raise _err("INVALID_FIELD", f"A relationship reference names exactly one external ID field: "
                                        f"{fdef.relationship_name}")
        ext = target.field(keys[0])
        if ext is None or not (ext.external_id or ext.id_lookup):
            raise _err("INVALID_FIELD", f"Field {keys[0]} is not an external ID or indexed field for "
                                        f"{target.name}")
        matches = self.find_by_external_id(target.name, ext.name, value[keys[0]])
        if not matches:
            raise _err("INVALID_FIELD", f"Foreign key external ID: {value[keys[0]]} not found for field "
                                        f"{ext.name} in entity {target.name}")
        return matches[0]["Id"]

    def _coerce(self, obj: ObjectDef, fdef: FieldDef, value: Any) -> Any:
        if fdef.type == "reference":
            return self._check_reference(fdef, value)
        stored = coerce(fdef.type, value, field=fdef.name, label=fdef.label_text, length=fdef.length,
                        precision=fdef.precision, scale=fdef.scale, digits=fdef.digits)
        if stored is not None and fdef.type in ("picklist", "multipicklist") and fdef.restricted:
            allowed = {v.lower() for v in fdef.active_values()}
            chosen = stored.split(";") if fdef.type == "multipicklist" else [stored]
            bad = [c for c in chosen if c.lower() not in allowed]
            if bad:
                raise CoercionError("INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST",
                                    f"{fdef.label_text}: bad value for restricted picklist field: {bad[0]}",
                                    [fdef.name])
        return stored

    def _check_reference(self, fdef: FieldDef, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str) or not ids.is_valid(value):
            raise CoercionError("MALFORMED_ID", f"{fdef.label_text}: id value of incorrect type: {value}",
                                [fdef.name])
        full = ids.to18(value)
        target = self.object_of_id(full)
        if target is None or target.name not in fdef.reference_to:
            raise CoercionError("FIELD_INTEGRITY_EXCEPTION",
                                f"{fdef.label_text}: id value of incorrect type: {value}", [fdef.name])
        parent = self._records[target.name].get(full)
        if parent is None:
            raise CoercionError("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [fdef.name])
        if parent.get("IsDeleted"):
            raise CoercionError("ENTITY_IS_DELETED", "entity is deleted", [fdef.name])
        return full

    def _apply_defaults(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        for f in obj.fields:
            if f.name in record:
                continue
            if f.type in ("picklist", "multipicklist"):
                default = next((p.value for p in f.picklist if p.default and p.active), None)
                if f.default_value is not None:
                    default = f.default_value
                if default is not None:
                    record[f.name] = default
            elif f.type == "boolean" and f.name != "IsDeleted":
                record[f.name] = bool(f.default_value) if f.default_value is not None else False
            elif f.default_value is not None and f.createable:
                record[f.name] = (exact_decimal(f.default_value, f.scale) if f.type in DECIMAL_TYPES
                                  else f.default_value)
            elif f.auto_number:
                n = self._autonumber.get(obj.name, 0) + 1
                self._autonumber[obj.name] = n
                record[f.name] = f"{obj.key_prefix.upper()}-{n:06d}"
            elif f.name == "OwnerId" and self.current_user_id:
                record["OwnerId"] = self.current_user_id

    def _check_required(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        missing = [f.name for f in obj.fields
                   if not f.nillable and f.createable and not f.defaulted_on_create and f.type != "boolean"
                   and record.get(f.name) in (None, "")]
        if missing:
            raise _err("REQUIRED_FIELD_MISSING", f"Required fields are missing: [{', '.join(missing)}]", missing)

    def _run_validation_rules(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        from connector.emulator.soql import compile_query  # the rules are SOQL conditions

        for rule in obj.validation_rules:
            if not rule.active:
                continue
            key = (obj.name, rule.condition)
            compiled = self._rule_cache.get(key)
            if compiled is None:
                compiled = compile_query(f"SELECT Id FROM {obj.name} WHERE {rule.condition}", self.org,
                                         self.now())
                self._rule_cache[key] = compiled
            if compiled.matches(record, self.fetch):
                raise _err("FIELD_CUSTOM_VALIDATION_EXCEPTION", rule.message,
                           [rule.field] if rule.field else [])

    def _check_unique(self, obj: ObjectDef, record: dict[str, Any], own_id: str | None) -> None:
        for (oname, fname), index in self._unique.items():
            if oname != obj.name or record.get(fname) in (None, ""):
                continue
            fdef = obj.field(fname)
            holder = index.get(self._unique_key(fdef, record[fname]))
            if holder and holder != own_id:
                raise _err("DUPLICATE_VALUE",
                           f"duplicate value found: {fname} duplicates value on record with id: {holder}")

    def _index(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        for (oname, fname), index in self._unique.items():
            if oname == obj.name and record.get(fname) not in (None, ""):
                index[self._unique_key(obj.field(fname), record[fname])] = record["Id"]

    def _unindex(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        for (oname, fname), index in self._unique.items():
            if oname == obj.name and record.get(fname) not in (None, ""):
                index.pop(self._unique_key(obj.field(fname), record[fname]), None)

    def _stamp(self, obj: ObjectDef, record: dict[str, Any], now: str, *, creating: bool) -> None:
        user = self.current_user_id
        names = obj._by_lower
        if creating:
            if "createddate" in names:
                record.setdefault("CreatedDate", now)
            if "createdbyid" in names and user:
                record.setdefault("CreatedById", user)
            if "isdeleted" in names:
                record.setdefault("IsDeleted", False)
        if "lastmodifieddate" in names:
            record["LastModifiedDate"] = now
        if "lastmodifiedbyid" in names and user:
            record["LastModifiedById"] = user
        if "systemmodstamp" in names:
            record["SystemModstamp"] = now

    def _store(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        self._remember(obj.name, record["Id"])
        self._records[obj.name][record["Id"]] = record
        self._index(obj, record)
        self._territory_inputs_changed(obj.name, record)

    def _territory_inputs_changed(self, object_name: str, record: dict[str, Any] | None) -> None:
        if object_name in _TERRITORY_RULE_OBJECTS:
            self._rules_cache = None
        elif object_name == "ObjectTerritory2Association" and self._assoc_index is not None:
            if record is None:
                self._assoc_index = None
            elif record.get("IsDeleted") or record["Id"] not in self._records[object_name]:
                self._assoc_index.get(record.get("ObjectId"), set()).discard(record["Id"])
            else:
                self._assoc_index.setdefault(record.get("ObjectId"), set()).add(record["Id"])

    def _after_save(self, obj: ObjectDef, record: dict[str, Any]) -> None:
        if obj.name == "Account" and self.org.features.territory_management:
            self.assign_territories(record)

    # -- bulk loading for generators and seeds ----------------------------------------------
    def bulk_load(self, object_name: str, records: Iterable[dict[str, Any]]) -> int:
        """Insert records that already carry an Id, without validation (data generators)."""
        obj = self.obj(object_name)
        count = 0
        with self.lock:
            now = self.now_wire()
            table = self._records[obj.name]
            has_unique = any(o == obj.name for o, _ in self._unique)
            assign = obj.name == "Account" and self.org.features.territory_management
            # Generators compute in floats; the org holds decimals at the field's scale.
            decimals = [(f.name, f.scale) for f in obj.fields if f.type in DECIMAL_TYPES]
            for record in records:
                for name, scale in decimals:
                    value = record.get(name)
                    if value is not None and value.__class__ is not Decimal:
                        record[name] = exact_decimal(value, scale)
                self._apply_defaults(obj, record)
                _derive(obj, record)
                self._stamp(obj, record, record.get("SystemModstamp") or now, creating=True)
                table[record["Id"]] = record
                if has_unique:
                    self._index(obj, record)
                if assign and not record.get("IsDeleted"):
                    self.assign_territories(record)
                count += 1
            self._territory_inputs_changed(obj.name, None)
        return count

    def load_seed(self) -> None:
        """Create the org definition's fixed records and its currency tables."""
        with self.lock:
            self._seed_currencies()
            self._seed_record_types()
            for object_name, records in self.org.seed.items():
                obj = self.obj(object_name)
                for spec in records:
                    values = dict(spec)
                    ref = values.pop("_ref", None)
                    values = {k: self._resolve_ref(v) for k, v in values.items()}
                    record = {}
                    for key, value in values.items():
                        fdef = obj.field(key)
                        if fdef is None:
                            raise ValueError(f"seed record of {obj.name} names unknown field {key}")
                        record[fdef.name] = (value if fdef.type == "reference" else
                                             coerce(fdef.type, value, field=fdef.name, label=fdef.label_text,
                                                    length=fdef.length, precision=fdef.precision,
                                                    scale=fdef.scale))
                    record["Id"] = record.get("Id") or self.new_id(obj.name)  # the Organization row's is fixed
                    if ref:
                        self._refs[ref] = record["Id"]
                    if obj.name == "User" and self.current_user_id is None:
                        self.current_user_id = record["Id"]
                    self.bulk_load(obj.name, [record])
            # Accounts seeded before the rules existed are placed once the rules are in, as the
            # org does when it runs the assignment rules.
            if self.org.features.territory_management and self.org.get_object("Account"):
                for account in list(self.scan("Account")):
                    self.assign_territories(account)

    def _resolve_ref(self, value: Any) -> Any:
        if isinstance(value, str) and value.startswith("@"):
            try:
                return self._refs[value[1:]]
            except KeyError:
                raise ValueError(f"seed data refers to {value}, which no earlier seed record names") from None
        return value

    def _seed_record_types(self) -> None:
        """RecordType rows behind the record types objects declare, so RecordTypeId values resolve."""
        if self.org.get_object("RecordType") is None:
            return
        rows = []
        for obj in self.org.objects:
            for rt in obj.record_types:
                if rt.record_type_id is None:
                    rt.record_type_id = self.new_id("RecordType")
                rows.append({"Id": rt.record_type_id, "Name": rt.name or rt.developer_name,
                             "DeveloperName": rt.developer_name, "SobjectType": obj.name, "IsActive": rt.active})
        self.bulk_load("RecordType", rows)

    def _seed_currencies(self) -> None:
        mc = self.org.features.multi_currency
        if mc is None:
            return
        if self.org.get_object("CurrencyType"):
            self.bulk_load("CurrencyType", ({
                "Id": self.new_id("CurrencyType"), "IsoCode": c.iso_code, "ConversionRate": c.rate,
                "DecimalPlaces": c.decimal_places, "IsActive": c.active, "IsCorporate": c.corporate,
            } for c in mc.currencies))
        if self.org.get_object("DatedConversionRate"):
            by_code: dict[str, list] = {}
            for rate in sorted(mc.dated_rates, key=lambda r: (r.iso_code, r.start_date)):
                by_code.setdefault(rate.iso_code, []).append(rate)
            rows = []
            for code, rates in by_code.items():
                for i, rate in enumerate(rates):
                    nxt = rates[i + 1].start_date if i + 1 < len(rates) else None
                    rows.append({"Id": self.new_id("DatedConversionRate"), "IsoCode": code,
                                 "ConversionRate": rate.rate, "StartDate": rate.start_date,
                                 "NextStartDate": nxt})
            self.bulk_load("DatedConversionRate", rows)

    # -- replication (getUpdated / getDeleted) ----------------------------------------------
    def updated_ids(self, object_name: str, start: str, end: str) -> list[str]:
        with self.lock:
            return [r["Id"] for r in self.scan(object_name)
                    if start <= r.get("SystemModstamp", "") < end]

    def deleted_entries(self, object_name: str, start: str, end: str) -> list[DeletedEntry]:
        with self.lock:
            self.purge_delete_log()
            return [e for e in self._deleted_log[self.obj(object_name).name] if start <= e.deleted_date < end]

    def earliest_delete_available(self, object_name: str) -> str:
        self.purge_delete_log()
        return self._earliest_delete[self.obj(object_name).name]

    def purge_delete_log(self) -> None:
        """Empty the recycle bin of deletes older than the retention, as the org does."""
        horizon = wire_datetime(self.now() - DELETE_LOG_RETENTION)
        with self.lock:
            for name, log in self._deleted_log.items():
                if log and log[0].deleted_date < horizon:
                    keep = [e for e in log if e.deleted_date >= horizon]
                    for entry in log[:len(log) - len(keep)]:
                        self._records[name].pop(entry.id, None)
                    self._deleted_log[name] = keep
                    self._earliest_delete[name] = max(self._earliest_delete[name], horizon)

    # -- metadata changes (an admin editing the org's setup) --------------------------------
    def touch_metadata(self, object_name: str | None) -> None:
        now = self.now()
        if object_name:
            self.metadata_modified[object_name] = now
        self.global_modified = now

    def add_field(self, object_name: str, fdef: FieldDef) -> None:
        obj = self.obj(object_name)
        with self.lock:
            obj.add_field(fdef)
            self._index_unique_fields(obj)
            self.touch_metadata(obj.name)

    def remove_field(self, object_name: str, field_name: str) -> None:
        obj = self.obj(object_name)
        with self.lock:
            fdef = obj.remove_field(field_name)
            for record in self._records[obj.name].values():
                record.pop(fdef.name, None)
            self._unique.pop((obj.name, fdef.name), None)
            self.touch_metadata(obj.name)

    def change_field(self, object_name: str, field_name: str, **changes: Any) -> None:
        obj = self.obj(object_name)
        with self.lock:
            fdef = obj.field(field_name)
            if fdef is None:
                raise KeyError(f"{obj.name} has no field {field_name}")
            for key, value in changes.items():
                if key not in FieldDef.model_fields:
                    raise KeyError(f"not a field attribute: {key}")
                setattr(fdef, key, value)
            self.touch_metadata(obj.name)

    def add_picklist_value(self, object_name: str, field_name: str, value: str, *, label: str | None = None,
                           default: bool = False) -> None:
        obj = self.obj(object_name)
        with self.lock:
            fdef = obj.field(field_name)
            if fdef is None or fdef.type not in ("picklist", "multipicklist"):
                raise KeyError(f"{obj.name}.{field_name} is not a picklist")
            fdef.picklist.append(PicklistValue(value=value, label=label, default=default))
            self.touch_metadata(obj.name)

    def add_object(self, obj: ObjectDef) -> None:
        with self.lock:
            self.org.add_object(obj)
            self._records[obj.name] = {}
            self._deleted_log[obj.name] = []
            self._earliest_delete[obj.name] = self.now_wire()
            self._index_unique_fields(obj)
            self.touch_metadata(obj.name)

    def remove_object(self, object_name: str) -> None:
        with self.lock:
            obj = self.org.remove_object(object_name)
            self._records.pop(obj.name, None)
            self._deleted_log.pop(obj.name, None)
            for key in [k for k in self._unique if k[0] == obj.name]:
                del self._unique[key]
            self.metadata_modified.pop(obj.name, None)
            self.touch_metadata(None)

    # -- territory assignment rules ---------------------------------------------------------
    def assign_territories(self, account: dict[str, Any]) -> None:
        """Run the active model's account assignment rules, as the org does on save."""
        if not self.org.get_object("ObjectTerritory2Association"):
            return
        wanted = self.matching_territories(account)
        table = self._records["ObjectTerritory2Association"]
        existing = [table[i] for i in self._associations_of(account["Id"])
                    if table[i].get("AssociationCause") == "Territory2AssociationRules"]
        have = {r["Territory2Id"] for r in existing}
        if not wanted and not existing:
            return
        now = self.now_wire()
        obj = self.obj("ObjectTerritory2Association")
        for record in existing:
            if record["Territory2Id"] not in wanted:
                self._delete_record(obj, record, now)
        for territory_id in sorted(wanted - have):
            record = {"Id": self.new_id(obj.name), "ObjectId": account["Id"], "Territory2Id": territory_id,
                      "AssociationCause": "Territory2AssociationRules", "SobjectType": "Account"}
            self._apply_defaults(obj, record)
            self._stamp(obj, record, now, creating=True)
            self._store(obj, record)

    def _associations_of(self, account_id: str) -> list[str]:
        if self._assoc_index is None:
            index: dict[str, set[str]] = {}
            for record in self.scan("ObjectTerritory2Association"):
                index.setdefault(record.get("ObjectId"), set()).add(record["Id"])
            self._assoc_index = index
        return sorted(self._assoc_index.get(account_id, ()))

    def _active_rules(self) -> list[tuple[dict[str, Any], list[dict[str, Any]], list[str]]]:
        """(rule, its items by sort order, its territories) for the Active model's Account rules."""
        if self._rules_cache is None:
            active_models = {m["Id"] for m in self.scan("Territory2Model") if m.get("State") == "Active"}
            items_by_rule: dict[str, list[dict[str, Any]]] = {}
            for item in self.scan("ObjectTerritory2AssignmentRuleItem"):
                items_by_rule.setdefault(item["RuleId"], []).append(item)
            territories_by_rule: dict[str, list[str]] = {}
            for link in self.scan("RuleTerritory2Association"):
                territories_by_rule.setdefault(link["RuleId"], []).append(link["Territory2Id"])
            rules = []
            for rule in self.scan("ObjectTerritory2AssignmentRule"):
                if not rule.get("IsActive") or rule.get("Territory2ModelId") not in active_models:
                    continue
                if (rule.get("ObjectType") or "Account") != "Account":
                    continue
                items = sorted(items_by_rule.get(rule["Id"], []), key=lambda i: i.get("SortOrder") or 0)
                if items:
                    rules.append((rule, items, territories_by_rule.get(rule["Id"], [])))
            self._rules_cache = rules
        return self._rules_cache

    def matching_territories(self, account: dict[str, Any]) -> set[str]:
        if not self.org.get_object("ObjectTerritory2AssignmentRule"):
            return set()
        out: set[str] = set()
        for rule, items, territories in self._active_rules():
            results = {int(i.get("SortOrder") or n + 1): _rule_item_matches(i, account)
                       for n, i in enumerate(items)}
            if evaluate_boolean_filter(rule.get("BooleanFilter"), results):
                out.update(territories)
        return out

    def _drop_territory_associations(self, account_id: str) -> None:
        if not self.org.get_object("ObjectTerritory2Association"):
            return
        obj = self.obj("ObjectTerritory2Association")
        now = self.now_wire()
        table = self._records[obj.name]
        for association_id in self._associations_of(account_id):
            record = table.get(association_id)
            if record is not None and not record.get("IsDeleted"):
                self._delete_record(obj, record, now)


WON_STAGES = frozenset({"Closed Won"})
CLOSED_STAGES = frozenset({"Closed Won", "Closed Lost"})


def _derive(obj: ObjectDef, record: dict[str, Any], into: dict[str, Any] | None = None) -> None:
    """Fields the org computes on save: an opportunity's IsClosed and IsWon follow its stage; a
    person's read-only Name (Contact, Lead, User) is made of the first and last names."""
    target = record if into is None else into
    name = obj.field("Name")
    if (name is not None and not name.createable and obj.field("LastName") is not None
            and ("FirstName" in record or "LastName" in record)):
        target["Name"] = " ".join(p for p in (record.get("FirstName"), record.get("LastName")) if p) or None
    if obj.name != "Opportunity" or "StageName" not in record:
        return
    stage = record.get("StageName")
    if obj.field("IsClosed") is not None:
        target["IsClosed"] = stage in CLOSED_STAGES
    if obj.field("IsWon") is not None:
        target["IsWon"] = stage in WON_STAGES


def _rule_item_matches(item: dict[str, Any], account: dict[str, Any]) -> bool:
    field_name = (item.get("Field") or "").split(".")[-1]
    actual = account.get(field_name)
    op = item.get("Operation") or "equals"
    raw = item.get("Value")
    candidates = [v.strip() for v in (raw or "").split(",")] if raw is not None else [""]

    def as_number(v: Any) -> float | None:
        try:
            return float(v)
        except (TypeError, ValueError):
            return None

    numeric = isinstance(actual, (int, float)) and not isinstance(actual, bool)
    if op in ("lessThan", "greaterThan", "lessOrEqual", "greaterOrEqual"):
        if actual is None or isinstance(actual, bool) or not (raw or "").strip():
            return False
        a, b = as_number(actual), as_number(raw)
        if a is None or b is None:  # a text field: the org orders text alphabetically, ignoring case
            if numeric:
                return False
            a, b = str(actual).lower(), raw.strip().lower()
        return {"lessThan": a < b, "greaterThan": a > b, "lessOrEqual": a <= b, "greaterOrEqual": a >= b}[op]
    text = "" if actual is None else str(actual).lower()
    values = [c.lower() for c in candidates]
    if op in ("equals", "notEqual"):
        # A number field equals a value by number: 1000000.0 (as JSON carries it) equals "1000000".
        hit = any((as_number(c) == float(actual)) if numeric and as_number(c) is not None
                  else text == c for c in values)
        return hit if op == "equals" else not hit
    if op == "contains":
        return any(v and v in text for v in values)
    if op == "notContain":
        return not any(v and v in text for v in values)
    if op == "startsWith":
        return any(text.startswith(v) for v in values if v)
    if op in ("includes", "excludes"):
        chosen = {p.strip() for p in text.split(";") if p.strip()}
        # as in SOQL's INCLUDES: a comma separates alternatives, `a;b` asks for a and b both selected
        hit = any(all(p.strip() in chosen for p in v.split(";") if p.strip()) for v in values if v.strip())
        return hit if op == "includes" else not hit
    return False


_FILTER_TOKEN = re.compile(r"\s*(\d+|\(|\)|AND\b|OR\b|NOT\b)", re.IGNORECASE)


def evaluate_boolean_filter(expression: str | None, results: dict[int, bool]) -> bool:
    """Evaluate a rule's BooleanFilter such as `1 AND (2 OR 3)`; none means all items ANDed."""
    if not expression or not expression.strip():
        return all(results.values())
    tokens: list[str] = []
    pos = 0
    text = expression.strip()
    while pos < len(text):
        m = _FILTER_TOKEN.match(text, pos)
        if not m:
            raise ValueError(f"bad BooleanFilter {expression!r} at {pos}")
        tokens.append(m.group(1).upper())
        pos = m.end()
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        position += 1
        return tokens[position - 1]

    def disjunction() -> bool:
        value = conjunction()
        while peek() == "OR":
            take()
            value = conjunction() or value
        return value

    def conjunction() -> bool:
        value = negation()
        while peek() == "AND":
            take()
            value = negation() and value
        return value

    def negation() -> bool:
        if peek() == "NOT":
            take()
            return not negation()
        token = take()
        if token == "(":
            value = disjunction()
            if take() != ")":
                raise ValueError(f"unbalanced BooleanFilter {expression!r}")
            return value
        return results.get(int(token), False)

    value = disjunction()
    if position != len(tokens):
        raise ValueError(f"trailing tokens in BooleanFilter {expression!r}")
    return value


__all__ = ["Clock", "DeletedEntry", "RecordError", "SaveError", "Store", "DELETE_LOG_RETENTION",
           "TEXT_TYPES", "evaluate_boolean_filter"]
