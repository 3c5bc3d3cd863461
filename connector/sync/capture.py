"""Local change capture: triggers on every synced table log each insert, update and
delete made by anything that writes it (the portal, an SQL console, the co-sell
API) into the change log, on SQLite and PostgreSQL alike.

The connector's own writes bump `_sync_version`, and the triggers ignore a write
that bumped it, so nothing the connector applies comes back as a local change.
A row the connector deletes is first marked with `_sync_version = -1`.

Triggers are (re)installed only when they are missing from the catalog or their
definition changed (a fingerprint per table is kept in `_cosell_capture`): DDL takes
an exclusive lock, so `ensure` on an up-to-date database must never run any."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from sqlalchemy import Column, MetaData, String, Table, delete, select, text
from sqlalchemy.engine import Connection

from connector.schema_mirror.model import ObjectSchema
from connector.schema_mirror.naming import meta_table_name

CONNECTOR_DELETE_MARK = -1
# Part of every fingerprint: bump it when the trigger SQL changes shape in a way the text alone
# would not show (it always does today, but the version says so on purpose).
CAPTURE_VERSION = "2"
PG_TRIGGER = "_cosell_capture"


def capture_table(metadata: MetaData, prefix: str = "") -> Table:
    """Which tables carry capture triggers, and the fingerprint of the definition installed."""
    return Table(meta_table_name("capture", prefix), metadata,
                 Column("table_name", String(128), primary_key=True),
                 Column("fingerprint", String(64), nullable=False))


@dataclass(frozen=True)
class CapturePlan:
    """What `ensure` will change: tables to (re)install, tables to remove capture from."""

    install: tuple[ObjectSchema, ...]
    remove: tuple[str, ...]

    @property
    def empty(self) -> bool:
        return not self.install and not self.remove


def _qualified(name: str, schema: str | None) -> str:
    return f'"{schema}"."{name}"' if schema else f'"{name}"'


def install(conn: Connection, objects: list[ObjectSchema], changes_table: str, *, schema: str | None = None) -> None:
    """(Re)create the capture triggers of the synced objects unconditionally."""
    synced = [o for o in objects if o.synced]
    if conn.dialect.name == "postgresql":
        conn.execute(text(_pg_function(changes_table, schema)))
        for obj in synced:
            table = _qualified(obj.table, schema)
            conn.execute(text(f'DROP TRIGGER IF EXISTS "{PG_TRIGGER}" ON {table}'))
            conn.execute(text(_pg_trigger(obj, schema)))
    else:
        for obj in synced:
            for trigger, body in _sqlite_triggers(obj, changes_table).items():
                conn.execute(text(f'DROP TRIGGER IF EXISTS "{trigger}"'))
                conn.execute(text(f'CREATE TRIGGER "{trigger}" {body}'))


def plan(conn: Connection, objects: list[ObjectSchema], changes_table: str, fingerprints: Table, *,
         schema: str | None = None) -> CapturePlan:
    """Compare what should be installed with the fingerprints and the catalog; plain reads only.

    A table is installed again when its trigger is missing (SQLite batch migrations rebuild a table
    without its triggers; a database mirrored by an older version has no fingerprints) or when its
    definition changed; capture is removed from tables that are no longer synced."""
    synced = {o.table: o for o in objects if o.synced}
    wanted = {table: fingerprint(obj, changes_table, conn.dialect.name, schema) for table, obj in synced.items()}
    stored = {r.table_name: r.fingerprint for r in conn.execute(select(fingerprints))}
    present = _tables_with_triggers(conn, schema)
    stale = [synced[t] for t, fp in wanted.items() if stored.get(t) != fp or t not in present]
    gone = sorted(t for t in stored if t not in synced)
    return CapturePlan(tuple(stale), tuple(gone))


def ensure(conn: Connection, objects: list[ObjectSchema], changes_table: str, fingerprints: Table, *,
           schema: str | None = None) -> CapturePlan:
    """Install capture where `plan` says it is missing or out of date, and record the fingerprints.
    On an up-to-date database it only reads."""
    todo = plan(conn, objects, changes_table, fingerprints, schema=schema)
    if todo.empty:
        return todo
    install(conn, list(todo.install), changes_table, schema=schema)
    for table in todo.remove:
        _uninstall(conn, table, schema)
    done = [o.table for o in todo.install] + list(todo.remove)
    conn.execute(delete(fingerprints).where(fingerprints.c.table_name.in_(done)))
    if todo.install:
        conn.execute(fingerprints.insert(), [
            dict(table_name=o.table, fingerprint=fingerprint(o, changes_table, conn.dialect.name, schema))
            for o in todo.install])
    return todo


def fingerprint(obj: ObjectSchema, changes_table: str, dialect: str, schema: str | None) -> str:
    """A digest of everything that defines one table's capture (the SQL itself)."""
    if dialect == "postgresql":
        parts = [_pg_function(changes_table, schema), _pg_trigger(obj, schema)]
    else:
        parts = [f"{name} {body}" for name, body in _sqlite_triggers(obj, changes_table).items()]
    return hashlib.sha256("\n".join([CAPTURE_VERSION, *parts]).encode()).hexdigest()


def _tables_with_triggers(conn: Connection, schema: str | None) -> set[str]:
    if conn.dialect.name == "postgresql":
        rows = conn.execute(text(
            "SELECT c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE t.tgname = :trigger AND n.nspname = coalesce(CAST(:schema AS text), current_schema())"),
            {"trigger": PG_TRIGGER, "schema": schema})
        return {r[0] for r in rows}
    # All three triggers of a table must be there.
    rows = conn.execute(text("SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' "
                             "AND name LIKE '\\_cosell\\_%' ESCAPE '\\'")).all()
    names = {r[0] for r in rows}
    return {r[1] for r in rows if all(f"_cosell_{op}_{r[1]}" in names for op in ("ins", "upd", "del"))}


def _uninstall(conn: Connection, table: str, schema: str | None) -> None:
    if conn.dialect.name == "postgresql":
        exists = conn.execute(text("SELECT to_regclass(:name)"), {"name": _qualified(table, schema)}).scalar()
        if exists is not None:
            conn.execute(text(f'DROP TRIGGER IF EXISTS "{PG_TRIGGER}" ON {_qualified(table, schema)}'))
        return
    for op in ("ins", "upd", "del"):
        conn.execute(text(f'DROP TRIGGER IF EXISTS "_cosell_{op}_{table}"'))


def _sqlite_triggers(obj: ObjectSchema, changes_table: str) -> dict[str, str]:
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    table = obj.table
    name = obj.name.replace("'", "''")
    return {
        f"_cosell_ins_{table}": (
            f'AFTER INSERT ON "{table}" WHEN NEW._sync_version = 0 BEGIN '
            f'INSERT INTO "{changes_table}" (object_name, row_uuid, sfid, op, changed_at) '
            f"VALUES ('{name}', NEW._uuid, NEW.sfid, 'I', {now}); END"),
        f"_cosell_upd_{table}": (
            f'AFTER UPDATE ON "{table}" WHEN NEW._sync_version = OLD._sync_version BEGIN '
            f'INSERT INTO "{changes_table}" (object_name, row_uuid, sfid, op, changed_at) '
            f"VALUES ('{name}', NEW._uuid, NEW.sfid, 'U', {now}); END"),
        f"_cosell_del_{table}": (
            f'AFTER DELETE ON "{table}" WHEN OLD._sync_version <> {CONNECTOR_DELETE_MARK} BEGIN '
            f'INSERT INTO "{changes_table}" (object_name, row_uuid, sfid, op, changed_at, base) '
            f"VALUES ('{name}', OLD._uuid, OLD.sfid, 'D', {now}, OLD._base); END"),
    }


def _pg_function(changes_table: str, schema: str | None) -> str:
    function = _qualified("_cosell_capture", schema)
    log = _qualified(changes_table, schema)
    return f"""
CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' THEN
    IF OLD._sync_version <> {CONNECTOR_DELETE_MARK} THEN
      INSERT INTO {log} (object_name, row_uuid, sfid, op, changed_at, base)
      VALUES (TG_ARGV[0], OLD._uuid, OLD.sfid, 'D', clock_timestamp(), OLD._base);
    END IF;
    RETURN OLD;
  ELSIF TG_OP = 'INSERT' THEN
    IF NEW._sync_version = 0 THEN
      INSERT INTO {log} (object_name, row_uuid, sfid, op, changed_at)
      VALUES (TG_ARGV[0], NEW._uuid, NEW.sfid, 'I', clock_timestamp());
    END IF;
    RETURN NEW;
  ELSE
    IF NEW._sync_version = OLD._sync_version THEN
      INSERT INTO {log} (object_name, row_uuid, sfid, op, changed_at)
      VALUES (TG_ARGV[0], NEW._uuid, NEW.sfid, 'U', clock_timestamp());
    END IF;
    RETURN NEW;
  END IF;
END
$$"""


def _pg_trigger(obj: ObjectSchema, schema: str | None) -> str:
    name = obj.name.replace("'", "''")
    return (f'CREATE TRIGGER "{PG_TRIGGER}" AFTER INSERT OR UPDATE OR DELETE ON {_qualified(obj.table, schema)} '
            f"FOR EACH ROW EXECUTE FUNCTION {_qualified('_cosell_capture', schema)}('{name}')")
