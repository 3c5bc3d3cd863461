"""Schema drift: compare the schema the org and mapping want with what the mirror
created before, plan the changes, and apply them with Alembic operations.

Additive changes (new table, new column, longer text, wider precision, new
picklist values) are applied and keep all data. Nothing is dropped on its own: a
field or object that went away is marked retired and left in place unless the
admin allows drops. On SQLite, column changes SQLite cannot ALTER go through
Alembic's batch mode, which copies the table safely. Money and number columns an
older version created on SQLite as text are converted to numeric columns, every
value checked to read back exactly first."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import MetaData, String, Table, Text, bindparam, delete, inspect, select
from sqlalchemy import column as sql_column, table as sql_table
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SQLAlchemyError

from connector.errors import FatalError
from connector.schema_mirror.model import FieldSchema, ObjectSchema
from connector.schema_mirror.tables import bookkeeping_columns, field_column, field_indexes, meta_tables, object_table
from connector.schema_mirror.types import as_decimal, column_type, sqlite_number

if TYPE_CHECKING:   # Alembic is imported by `apply` only: reading the mirror (every sync) never needs it
    from alembic.operations import Operations

ChangeKind = Literal["create_table", "add_column", "widen_column", "convert_column", "restore_column",
                     "retire_column", "drop_column", "retire_table", "restore_table", "drop_table", "picklist_values",
                     "keep_wider", "type_conflict"]
_TEXT_FAMILY = frozenset({"id", "reference", "string", "textarea", "picklist", "multipicklist", "combobox",
                          "email", "phone", "url", "encryptedstring"})
_DECIMAL_FAMILY = frozenset({"double", "currency", "percent"})


class SchemaApplyError(FatalError):
    """The database refused one change of the plan; names the object and field. The plan is applied
    in one transaction, so nothing of it was applied."""

    def __init__(self, change: Change, cause: Exception):
        reason = getattr(cause, "orig", None) or cause
        where = f"{change.object_name}.{change.field_name}" if change.field_name else change.object_name
        super().__init__(f"{where}: the database refused {change.kind}"
                         + (f" ({change.detail})" if change.detail else "")
                         + f": {str(reason).strip().splitlines()[0]}; nothing of the plan was applied")
        self.change = change


@dataclass(frozen=True)
class Change:
    kind: ChangeKind
    object_name: str
    field_name: str | None = None
    detail: str = ""

    @property
    def applies(self) -> bool:
        """False for changes that only inform the admin (nothing is altered)."""
        return self.kind not in ("keep_wider", "type_conflict")

    def __str__(self) -> str:
        where = f"{self.object_name}.{self.field_name}" if self.field_name else self.object_name
        return f"{self.kind:<16} {where}" + (f"  ({self.detail})" if self.detail else "")


@dataclass
class StoredField:
    name: str
    column: str
    sf_type: str
    length: int
    precision: int
    scale: int
    digits: int
    retired: bool
    text_number: bool = False  # a number column an older version created as text on SQLite


@dataclass
class StoredObject:
    name: str
    table: str
    retired: bool
    fields: dict[str, StoredField] = field(default_factory=dict)
    picklists: dict[str, list[tuple[str, bool]]] = field(default_factory=dict)
    describe_json: str | None = None
    described_at: dt.datetime | None = None


def read_current(conn: Connection, *, schema: str | None = None, prefix: str = "") -> dict[str, StoredObject]:
    """What the mirror created before, from its own metadata tables (empty on a new database)."""
    md = MetaData(schema=schema)
    meta = meta_tables(md, prefix)
    if not inspect(conn).has_table(meta["objects"].name, schema=schema):
        return {}
    out: dict[str, StoredObject] = {}
    for row in conn.execute(select(meta["objects"])):
        out[row.object_name] = StoredObject(row.object_name, row.table_name, bool(row.retired),
                                            describe_json=row.describe_json, described_at=row.described_at)
    for row in conn.execute(select(meta["fields"])):
        if row.object_name in out:
            out[row.object_name].fields[row.field_name] = StoredField(
                row.field_name, row.column_name, row.sf_type, row.length, row.precision, row.scale, row.digits,
                bool(row.retired))
    for row in conn.execute(select(meta["picklist_values"]).order_by(meta["picklist_values"].c.sort_order)):
        if row.object_name in out:
            out[row.object_name].picklists.setdefault(row.field_name, []).append((row.value, bool(row.active)))
    if conn.dialect.name == "sqlite":
        _find_text_numbers(conn, out, schema)
    return out


def _find_text_numbers(conn: Connection, objects: dict[str, StoredObject], schema: str | None) -> None:
    """Mark money and number columns declared as text (versions before numeric SQLite storage)."""
    inspector = inspect(conn)
    for stored in objects.values():
        numbers = {f.column: f for f in stored.fields.values() if f.sf_type in _DECIMAL_FAMILY and not f.retired}
        if stored.retired or not numbers or not inspector.has_table(stored.table, schema=schema):
            continue
        for column in inspector.get_columns(stored.table, schema=schema):
            if column["name"] in numbers and isinstance(column["type"], String):
                numbers[column["name"]].text_number = True


def plan(desired: list[ObjectSchema], current: dict[str, StoredObject], *, allow_drop: bool = False,
         managed: set[str] | None = None) -> list[Change]:
    """The changes that bring the database to `desired`. `managed` names the objects this run
    is responsible for (default: the desired ones); stored objects outside it are retired."""
    changes: list[Change] = []
    wanted = {o.name: o for o in desired}
    for obj in desired:
        stored = current.get(obj.name)
        if stored is None:
            changes.append(Change("create_table", obj.name, detail=f"{obj.table}, {len(obj.fields)} columns"))
            continue
        if stored.retired:
            changes.append(Change("restore_table", obj.name, detail="mapped again; data kept while retired"))
        changes.extend(_field_changes(obj, stored, allow_drop))
    for name, stored in current.items():
        if name in wanted or stored.retired or (managed is not None and name not in managed):
            continue
        changes.append(Change("drop_table" if allow_drop else "retire_table", name,
                              detail="no longer mapped or no longer in the org"
                              + ("; table dropped" if allow_drop else "; table and data kept")))
    return changes


def _field_changes(obj: ObjectSchema, stored: StoredObject, allow_drop: bool) -> list[Change]:
    out: list[Change] = []
    for f in obj.fields:
        old = stored.fields.get(f.name)
        if old is None:
            out.append(Change("add_column", obj.name, f.name, f"{f.sf_type}, backfilled on the next sync"))
            continue
        if old.retired:
            out.append(Change("restore_column", obj.name, f.name, "field is back; data kept while retired"))
        out.extend(_type_change(obj.name, f, old))
        values = [(p.value, p.active) for p in f.picklist]
        if values != stored.picklists.get(f.name, []) and (values or stored.picklists.get(f.name)):
            added = sorted({v for v, _ in values} - {v for v, _ in stored.picklists.get(f.name, [])})
            out.append(Change("picklist_values", obj.name, f.name,
                              f"new values: {', '.join(added)}" if added else "values or active flags changed"))
    desired_names = {f.name for f in obj.fields}
    for name, old in stored.fields.items():
        if name not in desired_names and not old.retired:
            out.append(Change("drop_column" if allow_drop else "retire_column", obj.name, name,
                              "field removed from the org or the mapping"
                              + ("; column dropped" if allow_drop else "; column and data kept")))
    return out


def _type_change(object_name: str, f: FieldSchema, old: StoredField) -> list[Change]:
    same_family = (old.sf_type == f.sf_type or {old.sf_type, f.sf_type} <= _TEXT_FAMILY
                   or {old.sf_type, f.sf_type} <= _DECIMAL_FAMILY)
    if not same_family:
        return [Change("type_conflict", object_name, f.name,
                       f"type changed from {old.sf_type} to {f.sf_type}; the column is kept as it is — "
                       "migrate it by hand or retire and re-add the field")]
    if f.sf_type in _TEXT_FAMILY:
        if f.length > old.length:
            return [Change("widen_column", object_name, f.name, f"length {old.length} -> {f.length}")]
        if f.length < old.length:
            return [Change("keep_wider", object_name, f.name, f"org length {f.length} < column {old.length}; "
                                                                "column kept wider, no data truncated")]
    if f.sf_type in _DECIMAL_FAMILY:
        int_old, int_new = old.precision - old.scale, f.precision - f.scale
        if old.text_number:
            wider = _widened(f, old)
            return [Change("convert_column", object_name, f.name,
                           f"text -> NUMERIC({wider.precision},{wider.scale}); values converted to numbers")]
        if int_new > int_old or f.scale > old.scale:
            return [Change("widen_column", object_name, f.name,
                           f"precision {old.precision},{old.scale} -> {max(int_new, int_old) + max(f.scale, old.scale)},"
                           f"{max(f.scale, old.scale)}")]
        if (f.precision, f.scale) != (old.precision, old.scale):
            return [Change("keep_wider", object_name, f.name, "org precision is narrower; column kept wider")]
    if f.sf_type in ("int",) and f.digits > old.digits and f.digits > 9 >= old.digits:
        return [Change("widen_column", object_name, f.name, f"digits {old.digits} -> {f.digits}")]
    return []


def _widened(f: FieldSchema, old: StoredField) -> FieldSchema:
    """The field with the wider of the stored and described sizes, so nothing shrinks."""
    from dataclasses import replace
    if f.sf_type in _DECIMAL_FAMILY:
        scale = max(f.scale, old.scale)
        return replace(f, precision=max(f.precision - f.scale, old.precision - old.scale) + scale, scale=scale)
    return replace(f, length=max(f.length, old.length), digits=max(f.digits, old.digits))


def apply(conn: Connection, desired: list[ObjectSchema], current: dict[str, StoredObject], changes: list[Change],
          *, schema: str | None = None, prefix: str = "", describes: dict[str, Any] | None = None,
          now: dt.datetime | None = None) -> None:
    """Apply `changes` in the caller's transaction and record the schema in the metadata tables."""
    from alembic.migration import MigrationContext
    from alembic.operations import Operations

    now = now or dt.datetime.now(dt.timezone.utc)
    md = MetaData(schema=schema)
    meta = meta_tables(md, prefix)
    md.create_all(conn, checkfirst=True)
    ops = Operations(MigrationContext.configure(conn, opts={"render_as_batch": conn.dialect.name == "sqlite"}))
    _upgrade_meta(conn, ops, meta, schema)
    wanted = {o.name: o for o in desired}
    sqlite = conn.dialect.name == "sqlite"
    for change in changes:
        if not change.applies:
            continue
        obj = wanted.get(change.object_name)
        try:
            if change.kind == "create_table":
                object_table(obj, MetaData(schema=schema), conn.dialect).create(conn)
            elif change.kind in ("add_column", "restore_column") and (
                    change.kind == "add_column" or not _has_column(conn, obj.table, obj.field(change.field_name).column,
                                                                    schema)):
                f = obj.field(change.field_name)
                ops.add_column(obj.table, field_column(f), schema=schema)
                for name, column, unique in field_indexes(obj.table, f):
                    ops.create_index(name, obj.table, [column], unique=unique, schema=schema)
            elif change.kind == "widen_column":
                f = obj.field(change.field_name)
                old = current[obj.name].fields[f.name]
                wider = _widened(f, old)
                old_type = column_type(_as_schema(old))
                if sqlite:
                    with ops.batch_alter_table(obj.table, schema=schema) as batch:
                        batch.alter_column(old.column, type_=column_type(wider), existing_type=old_type)
                else:
                    ops.alter_column(obj.table, old.column, type_=column_type(wider), existing_type=old_type,
                                     schema=schema)
            elif change.kind == "convert_column":
                f = obj.field(change.field_name)
                old = current[obj.name].fields[f.name]
                _convert_text_numbers(conn, ops, obj.table, old.column, _widened(f, old), schema)
            elif change.kind == "drop_column":
                column = current[change.object_name].fields[change.field_name].column
                table = current[change.object_name].table
                if sqlite:
                    with ops.batch_alter_table(table, schema=schema) as batch:
                        batch.drop_column(column)
                else:
                    ops.drop_column(table, column, schema=schema)
            elif change.kind == "drop_table":
                ops.drop_table(current[change.object_name].table, schema=schema)
        except SQLAlchemyError as exc:
            raise SchemaApplyError(change, exc) from exc
        conn.execute(meta["schema_changes"].insert().values(
            applied_at=now, object_name=change.object_name, field_name=change.field_name, change=change.kind,
            detail=change.detail))
    _record(conn, meta, desired, current, changes, describes or {}, now)
    for obj in desired:
        ensure_bookkeeping(conn, ops, obj, schema)


def _convert_text_numbers(conn: Connection, ops: Operations, table_name: str, column: str, f: FieldSchema,
                          schema: str | None) -> None:
    """Turn a text column of numbers into a numeric one (SQLite only), every value converted in
    Python first so that one SQLite would round stops the change instead of losing digits."""
    table = Table(table_name, MetaData(schema=schema), autoload_with=conn)
    key, text = table.c["_id"], table.c[column]
    converted = []
    for row_id, value in conn.execute(select(key, text).where(text.is_not(None))):
        try:
            number = as_decimal(value.strip() if isinstance(value, str) else value)
            converted.append({"row_id": row_id, "number": sqlite_number(number.quantize(
                Decimal(1).scaleb(-f.scale)), f.scale)})
        except (ArithmeticError, ValueError) as exc:
            raise ValueError(f"{table_name}.{column} row {row_id}: cannot convert {value!r} to a number: "
                             f"{exc}") from None
    with ops.batch_alter_table(table_name, schema=schema) as batch:
        batch.alter_column(column, type_=column_type(f), existing_type=text.type)
    if converted:
        # Untyped columns, so the ints and floats go to SQLite as they are (no float() on the way).
        plain = sql_table(table_name, sql_column("_id"), sql_column(column), schema=schema)
        conn.execute(plain.update().where(plain.c["_id"] == bindparam("row_id"))
                     .values({column: bindparam("number")}), converted)


def _upgrade_meta(conn: Connection, ops: Operations, meta: dict[str, Table], schema: str | None) -> None:
    """Metadata tables an earlier version created with `reference_to varchar(1000)`, too short for a
    polymorphic reference's targets, become TEXT (SQLite never enforced the length)."""
    if conn.dialect.name == "sqlite":
        return
    table = meta["fields"]
    column = next(c for c in inspect(conn).get_columns(table.name, schema=schema) if c["name"] == "reference_to")
    if getattr(column["type"], "length", None) is not None:
        ops.alter_column(table.name, "reference_to", type_=Text(), existing_type=column["type"], schema=schema)


def ensure_bookkeeping(conn: Connection, ops: Operations, obj: ObjectSchema, schema: str | None) -> None:
    """Add the connector's own columns a table lacks (an object that became read_write, or a table
    an earlier version created); they never carry Salesforce data, so this is always safe."""
    existing = {c["name"] for c in inspect(conn).get_columns(obj.table, schema=schema)}
    for column in bookkeeping_columns(conn.dialect.name, obj):
        if column.name not in existing and not column.primary_key and column.name != "_uuid":
            ops.add_column(obj.table, column, schema=schema)


def _has_column(conn: Connection, table: str, column: str, schema: str | None) -> bool:
    return any(c["name"] == column for c in inspect(conn).get_columns(table, schema=schema))


def stored_schema(stored: StoredObject) -> ObjectSchema:
    """An ObjectSchema of what the database holds now, from the metadata tables."""
    return ObjectSchema(name=stored.name, table=stored.table, label=stored.name, key_prefix=None, custom=False,
                        queryable=True, replicateable=True, createable=True, updateable=True, deletable=True,
                        fields=[_as_schema(f) for f in stored.fields.values()])


def _as_schema(old: StoredField) -> FieldSchema:
    return FieldSchema(name=old.name, sf_type=old.sf_type, length=old.length, precision=old.precision,
                       scale=old.scale, digits=old.digits)


def _record(conn: Connection, meta: dict[str, Table], desired: list[ObjectSchema], current: dict[str, StoredObject],
            changes: list[Change], describes: dict[str, Any], now: dt.datetime) -> None:
    """Write the applied schema into the metadata tables (objects, fields, picklists, record types)."""
    retired_objects = {c.object_name for c in changes if c.kind == "retire_table"}
    dropped_objects = {c.object_name for c in changes if c.kind == "drop_table"}
    retired_fields = {(c.object_name, c.field_name) for c in changes if c.kind == "retire_column"}
    dropped_fields = {(c.object_name, c.field_name) for c in changes if c.kind == "drop_column"}
    objects, fields, picklists, rtypes = meta["objects"], meta["fields"], meta["picklist_values"], meta["record_types"]
    for name in retired_objects:
        conn.execute(objects.update().where(objects.c.object_name == name).values(retired=True, retired_at=now))
    for name in dropped_objects:
        for table in (fields, picklists, rtypes, objects):
            conn.execute(delete(table).where(table.c.object_name == name))
    for name, field_name in retired_fields:
        conn.execute(fields.update().where((fields.c.object_name == name) & (fields.c.field_name == field_name))
                     .values(retired=True, retired_at=now))
    for name, field_name in dropped_fields:
        conn.execute(delete(fields).where((fields.c.object_name == name) & (fields.c.field_name == field_name)))
    for obj in desired:
        stored = current.get(obj.name)
        describe = describes.get(obj.name)
        values = dict(table_name=obj.table, label=obj.label, key_prefix=obj.key_prefix, retired=False,
                      retired_at=None)
        if describe is not None:
            values.update(described_at=now, describe_json=json.dumps(describe, separators=(",", ":")))
        if stored is None:
            conn.execute(objects.insert().values(object_name=obj.name, **values))
        else:
            conn.execute(objects.update().where(objects.c.object_name == obj.name).values(**values))
        for f in obj.fields:
            old = stored.fields.get(f.name) if stored else None
            kept = _widened(f, old) if old is not None and old.sf_type == f.sf_type else f
            row = dict(column_name=f.column, sf_type=f.sf_type, label=f.label[:255], length=kept.length,
                       precision=kept.precision, scale=kept.scale, digits=kept.digits, external_id=f.external_id,
                       is_unique=f.unique, reference_to=",".join(f.reference_to), retired=False, retired_at=None)
            if old is None:
                conn.execute(fields.insert().values(object_name=obj.name, field_name=f.name, **row))
            else:
                if old.sf_type != f.sf_type and any(c.kind == "type_conflict" and c.field_name == f.name
                                                    for c in changes):
                    row["sf_type"] = old.sf_type
                conn.execute(fields.update().where((fields.c.object_name == obj.name) &
                                                   (fields.c.field_name == f.name)).values(**row))
        conn.execute(delete(picklists).where(picklists.c.object_name == obj.name))
        rows = [dict(object_name=obj.name, field_name=f.name, value=p.value[:255], label=p.label[:255],
                     active=p.active, is_default=p.default, sort_order=i, restricted=f.restricted)
                for f in obj.fields for i, p in enumerate(f.picklist)]
        if rows:
            conn.execute(picklists.insert(), rows)
        conn.execute(delete(rtypes).where(rtypes.c.object_name == obj.name))
        if obj.record_types:
            conn.execute(rtypes.insert(), [dict(object_name=obj.name, record_type_id=rt.record_type_id,
                                                developer_name=rt.developer_name, name=rt.name, active=rt.active,
                                                is_default=rt.default, master=rt.master)
                                           for rt in obj.record_types])


__all__ = ["Change", "SchemaApplyError", "StoredObject", "apply", "plan", "read_current"]
