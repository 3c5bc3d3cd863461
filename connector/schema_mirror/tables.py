"""SQLAlchemy tables for mirrored objects and for the connector's schema metadata
(objects, fields with their retired flag, picklist values, record types, the log
of applied schema changes). Building a table never touches the database."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, Index, Integer, MetaData, String, Table, Text, text
from sqlalchemy.engine import Dialect

from connector.schema_mirror import naming
from connector.schema_mirror.model import FieldSchema, ObjectSchema, ref_uuid_column
from connector.schema_mirror.types import UtcDateTime, column_type

# A version-4 UUID for rows inserted by anything (portal, SQL console) that does not set one.
_SQLITE_UUID = ("(lower(hex(randomblob(4))) || '-' || lower(hex(randomblob(2))) || '-4' || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || substr('89ab', 1 + (abs(random()) % 4), 1) || "
                "substr(lower(hex(randomblob(2))), 2) || '-' || lower(hex(randomblob(6))))")
_POSTGRES_UUID = "gen_random_uuid()::text"


def uuid_default(dialect_name: str):
    return text(_SQLITE_UUID if dialect_name == "sqlite" else _POSTGRES_UUID)


def field_column(f: FieldSchema) -> Column:
    """The column of one field; the Id is `sfid` and unique, nothing else is NOT NULL so partial
    rows written by the portal before Salesforce has seen them are allowed."""
    return Column(f.column, column_type(f), nullable=True, unique=f.name == "Id", comment=f.label[:255])


def bookkeeping_columns(dialect_name: str, obj: ObjectSchema | None = None) -> list[Column]:
    """The connector's own columns: row identity, sync bookkeeping, and for synced objects one
    `_<reference>_uuid` per reference so a portal row can name a parent Salesforce has not seen."""
    columns = [
        Column("_id", Integer, primary_key=True, autoincrement=True),
        Column("_uuid", String(36), nullable=False, unique=True, server_default=uuid_default(dialect_name)),
        # The connector bumps it on each of its own writes; change capture ignores those writes.
        Column("_sync_version", Integer, nullable=False, server_default=text("0")),
        Column("_base", Text, nullable=True),
        Column("_synced_at", UtcDateTime, nullable=True),
        Column("_sync_error", Text, nullable=True),
    ]
    if obj is not None and obj.synced:
        columns.extend(Column(ref_uuid_column(f), String(36), nullable=True) for f in obj.references
                       if f.name not in ("CreatedById", "LastModifiedById"))
    return columns


def index_name(table: str, column: str, unique: bool) -> str:
    """`ix_<table>_<column>` (`ux_` when unique). Index names share one namespace per schema and
    PostgreSQL keeps 63 bytes of them, so a longer name is shortened with a hash of the whole name:
    two long fields sharing their first characters still get two indexes."""
    return naming.fit_identifier(f"{'ux' if unique else 'ix'}_{table}_{column}")


def field_indexes(table_name: str, f: FieldSchema) -> list[tuple[str, str, bool]]:
    """(index name, column, unique) for a field: references are indexed, external IDs and unique fields unique."""
    if f.name == "Id":
        return []
    if f.external_id or f.unique:
        return [(index_name(table_name, f.column, True), f.column, True)]
    if f.sf_type == "reference":
        return [(index_name(table_name, f.column, False), f.column, False)]
    return []


def object_table(obj: ObjectSchema, metadata: MetaData, dialect: Dialect | str) -> Table:
    dialect_name = dialect if isinstance(dialect, str) else dialect.name
    table = Table(obj.table, metadata, *bookkeeping_columns(dialect_name, obj), *(field_column(f) for f in obj.fields),
                  comment=f"Salesforce {obj.name} (mirrored by cosell-connector)")
    for f in obj.fields:
        for name, column, unique in field_indexes(obj.table, f):
            Index(name, table.c[column], unique=unique)
    return table


def meta_tables(metadata: MetaData, prefix: str = "") -> dict[str, Table]:
    """The connector's own schema bookkeeping, kept apart by the `_cosell_` prefix."""
    t = {}
    t["objects"] = Table(
        naming.meta_table_name("objects", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        Column("table_name", String(128), nullable=False),
        Column("label", String(255)),
        Column("key_prefix", String(3)),
        Column("retired", Boolean, nullable=False, default=False),
        Column("retired_at", UtcDateTime),
        Column("described_at", UtcDateTime),
        Column("describe_json", Text),
    )
    t["fields"] = Table(
        naming.meta_table_name("fields", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        Column("field_name", String(120), primary_key=True),
        Column("column_name", String(128), nullable=False),
        Column("sf_type", String(40), nullable=False),
        Column("label", String(255)),
        Column("length", Integer, nullable=False, default=0),
        Column("precision", Integer, nullable=False, default=0),
        Column("scale", Integer, nullable=False, default=0),
        Column("digits", Integer, nullable=False, default=0),
        Column("external_id", Boolean, nullable=False, default=False),
        Column("is_unique", Boolean, nullable=False, default=False),
        # Every target of a reference, comma-separated; unbounded because a polymorphic reference
        # names dozens of objects (Event.WhatId: 80 and more in a real org).
        Column("reference_to", Text),
        Column("retired", Boolean, nullable=False, default=False),
        Column("retired_at", UtcDateTime),
    )
    t["picklist_values"] = Table(
        naming.meta_table_name("picklist_values", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        Column("field_name", String(120), primary_key=True),
        Column("value", String(255), primary_key=True),
        Column("label", String(255)),
        Column("active", Boolean, nullable=False),
        Column("is_default", Boolean, nullable=False),
        Column("sort_order", Integer, nullable=False),
        Column("restricted", Boolean, nullable=False, default=False),
    )
    t["record_types"] = Table(
        naming.meta_table_name("record_types", prefix), metadata,
        Column("object_name", String(120), primary_key=True),
        Column("record_type_id", String(18), primary_key=True),
        Column("developer_name", String(255)),
        Column("name", String(255)),
        Column("active", Boolean, nullable=False),
        Column("is_default", Boolean, nullable=False),
        Column("master", Boolean, nullable=False),
    )
    t["schema_changes"] = Table(
        naming.meta_table_name("schema_changes", prefix), metadata,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("applied_at", UtcDateTime, nullable=False),
        Column("object_name", String(120), nullable=False),
        Column("field_name", String(120)),
        Column("change", String(40), nullable=False),
        Column("detail", Text),
    )
    return t
