"""The schema mirror: describe the mapped objects (25 per call, If-Modified-Since so
an unchanged org costs only 304s), turn them into tables, plan the drift against
what exists, apply it, and load the rows of the mirrored objects.

It never drops a table or a column unless the admin allows it, and reports a
mapped object or field the org does not have instead of failing."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import MetaData, Table, delete, inspect, select, text
from sqlalchemy.engine import Connection, Engine

from connector.mapping import Mapping
from connector.salesforce.client import NOT_MODIFIED, SalesforceClient
from connector.schema_mirror import currency, drift
from connector.schema_mirror.model import MirrorProblem, ObjectSchema, object_from_describe
from connector.schema_mirror.tables import meta_tables, object_table

Progress = Callable[[str, int], None]


@dataclass
class MirrorPlan:
    objects: list[ObjectSchema]
    changes: list[drift.Change]
    problems: list[MirrorProblem]
    describes: dict[str, Any] = field(repr=False, default_factory=dict)
    current: dict[str, drift.StoredObject] = field(repr=False, default_factory=dict)

    @property
    def pending(self) -> list[drift.Change]:
        return [c for c in self.changes if c.applies]


class SchemaMirror:
    """Reproduces the mapped part of an org as tables in one database."""

    def __init__(self, client: SalesforceClient, engine: Engine, mapping: Mapping) -> None:
        self.client, self.engine, self.mapping = client, engine, mapping
        self.schema = mapping.database.schema_name if engine.dialect.name != "sqlite" else None
        self.prefix = mapping.database.table_prefix
        self._schemas: tuple[tuple | None, dict[str, ObjectSchema]] | None = None

    # -- describe and plan ------------------------------------------------------------------
    def plan(self, *, allow_drop: bool = False) -> MirrorPlan:
        with self.engine.connect() as conn:
            current = drift.read_current(conn, schema=self.schema, prefix=self.prefix)
        names = list(self.mapping.objects)
        # Re-describing an unchanged org costs only 304s when every mapped object was described before.
        described = bool(current) and all(n in current and current[n].describe_json and current[n].described_at
                                          for n in names)
        since = min(current[n].described_at for n in names) if described else None
        raw = self.client.describe(names, since=since)
        describes: dict[str, Any] = {}
        objects: list[ObjectSchema] = []
        problems: list[MirrorProblem] = []
        for name in names:
            body = raw.get(name)
            if body is NOT_MODIFIED:
                body = json.loads(current[name].describe_json)
            elif body is not None:
                describes[name] = body
            if body is None:
                problems.append(MirrorProblem(name, None, "is mapped but the org has no such object (or the "
                                                          "integration user cannot see it); skipped"))
                continue
            mapping = self.mapping.objects[name]
            obj, found = object_from_describe(body, selects=mapping.selects, prefix=self.prefix,
                                              requested_fields=list(mapping.fields.include or []),
                                              synced=mapping.direction == "read_write")
            objects.append(obj)
            problems.extend(found)
        changes = drift.plan(objects, current, allow_drop=allow_drop)
        return MirrorPlan(objects, changes, problems, describes, current)

    def apply(self, plan: MirrorPlan) -> list[drift.Change]:
        """Apply the plan in one transaction; a failure leaves the database as it was."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                # pysqlite opens a transaction only before INSERT/UPDATE/DELETE and runs CREATE and
                # ALTER outside one; an explicit BEGIN makes the whole plan one transaction there too.
                conn.exec_driver_sql("BEGIN")
            self._ensure_schema(conn)
            # PostgreSQL refuses to retype or drop a column a view reads: the corporate-currency
            # views are dropped here and made again by `create_views` once the tables are final.
            for obj in self._currency_objects(plan):
                currency.drop_corporate_view(conn, obj.name, schema=self.schema, prefix=self.prefix)
            drift.apply(conn, plan.objects, plan.current, plan.changes, schema=self.schema, prefix=self.prefix,
                        describes=plan.describes)
        return plan.pending

    def _currency_objects(self, plan: MirrorPlan) -> list[ObjectSchema]:
        return [o for o in plan.objects if o.currency_fields and o.field("CurrencyIsoCode") is not None]

    def create_views(self, plan: MirrorPlan) -> list[str]:
        """`<table>_corporate` views: every currency amount also in the corporate currency at the dated
        rate that applies. Needs the currency tables loaded; skipped (empty list) while they are empty."""
        names = {o.name for o in plan.objects}
        if not {"CurrencyType", "DatedConversionRate"} <= names:
            return []
        views = []
        with self.engine.begin() as conn:
            try:
                for obj in self._currency_objects(plan):
                    views.append(currency.create_corporate_view(
                        conn, obj.name, [f.column for f in obj.currency_fields], schema=self.schema,
                        prefix=self.prefix))
            except currency.CurrencyError:
                return []
        return views

    def _ensure_schema(self, conn: Connection) -> None:
        if self.schema and conn.dialect.name == "postgresql":
            conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))

    def tables(self, plan: MirrorPlan) -> dict[str, Table]:
        md = MetaData(schema=self.schema)
        return {o.name: object_table(o, md, self.engine.dialect) for o in plan.objects}

    def schemas(self) -> dict[str, ObjectSchema]:
        """The mirrored objects as last described, from the metadata tables alone (no API call).

        Parsed once per process: while the stored describes are unchanged (one small read says so),
        the same objects are returned again, so a one-object sync run does not re-read every object."""
        with self.engine.connect() as conn:
            signature = self._signature(conn)
            if self._schemas is not None and self._schemas[0] == signature:
                return dict(self._schemas[1])
            current = drift.read_current(conn, schema=self.schema, prefix=self.prefix)
        out = {}
        for name, mapping in self.mapping.objects.items():
            stored = current.get(name)
            if stored is None or stored.retired or not stored.describe_json:
                continue
            obj, _ = object_from_describe(json.loads(stored.describe_json), selects=mapping.selects,
                                          prefix=self.prefix, requested_fields=list(mapping.fields.include or []),
                                          synced=mapping.direction == "read_write")
            out[name] = obj
        self._schemas = (signature, out)
        return dict(out)

    def _signature(self, conn: Connection) -> tuple | None:
        """What `schemas()` depends on besides the mapping: which objects are stored, retired, and
        when each was last described (a new describe always comes with a new time)."""
        objects = meta_tables(MetaData(schema=self.schema), self.prefix)["objects"]
        if not inspect(conn).has_table(objects.name, schema=self.schema):
            return None
        return tuple(tuple(r) for r in conn.execute(
            select(objects.c.object_name, objects.c.retired, objects.c.described_at).order_by(objects.c.object_name)))

    def table(self, object_name: str) -> Table:
        """The mirrored table of an object as the mirror last built it (retired columns included),
        from the metadata tables alone — no API call. Its column types give Decimal, date and
        aware datetimes back on both databases."""
        with self.engine.connect() as conn:
            current = drift.read_current(conn, schema=self.schema, prefix=self.prefix)
        stored = next((o for n, o in current.items() if n.lower() == object_name.lower()), None)
        if stored is None:
            raise KeyError(f"{object_name} is not mirrored in this database; run `cosell mirror` first")
        return object_table(drift.stored_schema(stored), MetaData(schema=self.schema), self.engine.dialect)

    # -- data -------------------------------------------------------------------------------
    def load(self, plan: MirrorPlan, objects: Iterable[str] | None = None, *, progress: Progress | None = None,
             batch: int = 2000) -> dict[str, int]:
        """Read every live row of the mirrored objects and write it to its table (upsert by sfid).

        Rows of read-only objects that are no longer in the org are removed; rows of read-write
        objects are only added or updated here (the sync engine owns their deletes)."""
        wanted = set(objects) if objects is not None else None
        tables = self.tables(plan)
        counts: dict[str, int] = {}
        for obj in plan.objects:
            if (wanted is not None and obj.name not in wanted) or not obj.queryable:
                continue
            table = tables[obj.name]
            soql = f"SELECT {', '.join(f.name for f in obj.fields)} FROM {obj.name}"
            seen: set[str] = set()
            count = 0
            chunk: list[dict[str, Any]] = []
            with self.engine.begin() as conn:
                for record in self.client.query(soql):
                    chunk.append({f.column: f.to_python(record.get(f.name)) for f in obj.fields})
                    seen.add(record["Id"])
                    if len(chunk) >= batch:
                        count += self._upsert(conn, table, chunk)
                        chunk = []
                        if progress:
                            progress(obj.name, count)
                count += self._upsert(conn, table, chunk)
                mapping = self.mapping.objects.get(obj.name)
                if mapping is not None and mapping.direction == "read_only":
                    stale = [row.sfid for row in conn.execute(select(table.c.sfid).where(table.c.sfid.is_not(None)))
                             if row.sfid not in seen]
                    for start in range(0, len(stale), 500):
                        conn.execute(delete(table).where(table.c.sfid.in_(stale[start:start + 500])))
            counts[obj.name] = count
            if progress:
                progress(obj.name, count)
        return counts

    def _upsert(self, conn: Connection, table: Table, rows: list[dict[str, Any]]) -> int:
        if not rows:
            return 0
        if conn.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = insert(table)
        columns = [c for c in rows[0] if c != "sfid"]
        statement = statement.on_conflict_do_update(index_elements=["sfid"],
                                                    set_={c: statement.excluded[c] for c in columns})
        conn.execute(statement, rows)
        return len(rows)

    # -- snapshot ---------------------------------------------------------------------------
    def snapshot(self, folder: Path, names: Iterable[str] | None = None) -> list[Path]:
        """Save describe payloads in the folder format the emulator reads (`cosell emulator serve --org DIR`)."""
        folder.mkdir(parents=True, exist_ok=True)
        names = list(names or self.mapping.objects)
        written = []
        global_describe = self.client.describe_global()
        (folder / "describeGlobal.json").write_text(json.dumps(global_describe, indent=1))
        written.append(folder / "describeGlobal.json")
        for name, body in self.client.describe(names).items():
            if body is None:
                continue
            path = folder / f"{name}.json"
            path.write_text(json.dumps(body, indent=1))
            written.append(path)
        return written
