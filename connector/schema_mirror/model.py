"""The mirrored schema as plain data: objects and fields read from describe and
narrowed by the mapping, with what could not be mirrored reported as problems.

Pure: no database, no HTTP. Values arriving in Salesforce's wire format are
turned into the Python values the tables store (Decimal, date, aware datetime)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from connector.schema_mirror import naming
from connector.schema_mirror.types import COMPOUND_TYPES, TYPE_MAP

# Fields the sync needs on every object that has them, whatever the mapping selects.
ALWAYS_MIRRORED = ("Id", "IsDeleted", "SystemModstamp", "LastModifiedDate", "CurrencyIsoCode")


@dataclass(frozen=True)
class PicklistEntry:
    value: str
    label: str
    active: bool
    default: bool


@dataclass(frozen=True)
class FieldSchema:
    """One mirrored field with the describe attributes the mirror and sync use."""

    name: str
    sf_type: str
    label: str = ""
    length: int = 0
    precision: int = 0
    scale: int = 0
    digits: int = 0
    nillable: bool = True
    createable: bool = False
    updateable: bool = False
    custom: bool = False
    calculated: bool = False
    external_id: bool = False
    unique: bool = False
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    compound_field_name: str | None = None
    picklist: tuple[PicklistEntry, ...] = ()
    restricted: bool = False
    # Master-detail: deleting the parent deletes this record with it.
    cascade_delete: bool = False

    @property
    def column(self) -> str:
        return naming.column_name(self.name)

    @classmethod
    def from_describe(cls, d: dict[str, Any]) -> FieldSchema:
        return cls(
            name=d["name"], sf_type=d["type"], label=d.get("label") or d["name"], length=d.get("length") or 0,
            precision=d.get("precision") or 0, scale=d.get("scale") or 0, digits=d.get("digits") or 0,
            nillable=bool(d.get("nillable", True)), createable=bool(d.get("createable")),
            updateable=bool(d.get("updateable")), custom=bool(d.get("custom")),
            calculated=bool(d.get("calculated")), external_id=bool(d.get("externalId")),
            unique=bool(d.get("unique")), reference_to=tuple(d.get("referenceTo") or ()),
            relationship_name=d.get("relationshipName"), compound_field_name=d.get("compoundFieldName"),
            picklist=tuple(PicklistEntry(p["value"], p.get("label") or p["value"], bool(p.get("active", True)),
                                         bool(p.get("defaultValue"))) for p in d.get("picklistValues") or ()),
            restricted=bool(d.get("restrictedPicklist")),
            cascade_delete=bool(d.get("cascadeDelete")) and d.get("type") == "reference")

    def to_python(self, value: Any) -> Any:
        """A wire value (REST JSON or Bulk CSV text) as the Python value the column holds."""
        if value is None or (value == "" and self.sf_type not in ("string", "textarea")):
            return None
        t = self.sf_type
        if t in ("double", "currency", "percent"):
            return value if isinstance(value, Decimal) else Decimal(str(value))
        if t in ("int", "long"):
            return int(Decimal(str(value)))
        if t == "boolean":
            return value if isinstance(value, bool) else str(value).lower() == "true"
        if t == "date":
            return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])
        if t == "datetime":
            if isinstance(value, dt.datetime):
                return value
            text = str(value).replace("Z", "+00:00")
            if text.endswith("+0000"):
                text = text[:-5] + "+00:00"
            return dt.datetime.fromisoformat(text).astimezone(dt.timezone.utc)
        if t == "time":
            return dt.time.fromisoformat(str(value).rstrip("Z")[:8])
        return value


@dataclass(frozen=True)
class RecordTypeInfo:
    record_type_id: str
    developer_name: str
    name: str
    active: bool
    default: bool
    master: bool


@dataclass
class ObjectSchema:
    """One mirrored object: its table name and the fields that become columns."""

    name: str
    table: str
    label: str
    key_prefix: str | None
    custom: bool
    queryable: bool
    replicateable: bool
    createable: bool
    updateable: bool
    deletable: bool
    fields: list[FieldSchema]
    record_types: list[RecordTypeInfo] = field(default_factory=list)
    compound_fields: list[str] = field(default_factory=list)
    # Synced both ways (read_write in the mapping): its table also gets change capture and the
    # columns that let a portal row name a parent that Salesforce has not seen yet.
    synced: bool = False

    def field(self, name: str) -> FieldSchema | None:
        lower = name.lower()
        return next((f for f in self.fields if f.name.lower() == lower), None)

    @property
    def references(self) -> list[FieldSchema]:
        return [f for f in self.fields if f.sf_type == "reference"]

    @property
    def has_is_deleted(self) -> bool:
        return self.field("IsDeleted") is not None

    @property
    def currency_fields(self) -> list[FieldSchema]:
        return [f for f in self.fields if f.sf_type == "currency"]


@dataclass(frozen=True)
class MirrorProblem:
    """Something mapped that cannot be mirrored; reported clearly and skipped, never a crash."""

    object_name: str
    field_name: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.object_name}.{self.field_name}" if self.field_name else self.object_name
        return f"{where}: {self.message}"


def ref_uuid_column(f: FieldSchema) -> str:
    """The bookkeeping column where a portal row names its parent by the parent row's `_uuid`
    (shortened with a hash where a long field name would take it past PostgreSQL's 63 bytes)."""
    return naming.fit_identifier(f"_{f.column}_uuid")


def object_from_describe(describe: dict[str, Any], *, selects=None, requested_fields: list[str] | None = None,
                         prefix: str = "", synced: bool = False) -> tuple[ObjectSchema, list[MirrorProblem]]:
    """The mirrored shape of one object: `selects(field_name) -> bool` narrows its fields;
    `requested_fields` (an include list) is checked against describe so missing ones are reported."""
    name = describe["name"]
    problems: list[MirrorProblem] = []
    all_fields = [FieldSchema.from_describe(d) for d in describe.get("fields", [])]
    by_lower = {f.name.lower(): f for f in all_fields}
    compound_selected = {f.name for f in all_fields
                         if f.sf_type in COMPOUND_TYPES and (selects is None or selects(f.name))}
    # Naming a compound field in an include list brings its components; an exclude list that
    # names a component keeps it out even though the compound field itself stays selected.
    requested_lower = {r.lower() for r in requested_fields or []}
    compound_requested = {n for n in compound_selected if n.lower() in requested_lower}
    chosen: list[FieldSchema] = []
    for f in all_fields:
        if f.sf_type in COMPOUND_TYPES:
            continue
        wanted = (selects is None or selects(f.name) or f.name in ALWAYS_MIRRORED
                  or (f.compound_field_name is not None and f.compound_field_name in compound_requested))
        if not wanted:
            continue
        if f.sf_type not in TYPE_MAP:
            problems.append(MirrorProblem(name, f.name, f"type {f.sf_type!r} is not known to the schema mirror; "
                                                        "skipped (register it in connector.schema_mirror.types)"))
            continue
        chosen.append(f)
    for requested in requested_fields or []:
        if requested.lower() not in by_lower:
            problems.append(MirrorProblem(name, requested, "is mapped but the org has no such field "
                                          "(or the integration user cannot see it); skipped"))
    record_types = [RecordTypeInfo(rt["recordTypeId"], rt.get("developerName") or rt["name"], rt["name"],
                                   bool(rt.get("active", True)), bool(rt.get("defaultRecordTypeMapping")),
                                   bool(rt.get("master")))
                    for rt in describe.get("recordTypeInfos") or []]
    schema = ObjectSchema(
        name=name, table=naming.table_name(name, prefix), label=describe.get("label") or name,
        key_prefix=describe.get("keyPrefix"), custom=bool(describe.get("custom")),
        queryable=bool(describe.get("queryable", True)), replicateable=bool(describe.get("replicateable")),
        createable=bool(describe.get("createable")), updateable=bool(describe.get("updateable")),
        deletable=bool(describe.get("deletable")), fields=chosen, record_types=record_types,
        compound_fields=sorted(compound_selected), synced=synced)
    return schema, problems
