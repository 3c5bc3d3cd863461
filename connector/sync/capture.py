"""Local change capture: triggers on every synced table log each insert, update and
delete made by anything that writes it (the portal, an SQL console, the co-sell
API) into the change log, on SQLite and PostgreSQL alike.

The connector's own writes bump `_sync_version`, and the triggers ignore a write
that bumped it, so nothing the connector applies comes back as a local change.
A row the connector deletes is first marked with `_sync_version = -1`."""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import Connection

from connector.schema_mirror.model import ObjectSchema

CONNECTOR_DELETE_MARK = -1


def _qualified(name: str, schema: str | None) -> str:
    return f'"{schema}"."{name}"' if schema else f'"{name}"'


def install(conn: Connection, objects: list[ObjectSchema], changes_table: str, *, schema: str | None = None) -> None:
    """(Re)create the capture triggers of the synced objects; idempotent, and needed again after
    SQLite batch migrations, which rebuild a table without its triggers."""
    synced = [o for o in objects if o.synced]
    if conn.dialect.name == "postgresql":
        _install_postgresql(conn, synced, changes_table, schema)
    else:
        _install_sqlite(conn, synced, changes_table)


def _install_sqlite(conn: Connection, objects: list[ObjectSchema], changes_table: str) -> None:
    now = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
    for obj in objects:
        table = obj.table
        name = obj.name.replace("'", "''")
        statements = {
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
        for trigger, body in statements.items():
            conn.execute(text(f'DROP TRIGGER IF EXISTS "{trigger}"'))
            conn.execute(text(f'CREATE TRIGGER "{trigger}" {body}'))


def _install_postgresql(conn: Connection, objects: list[ObjectSchema], changes_table: str,
                        schema: str | None) -> None:
    function = _qualified("_cosell_capture", schema)
    log = _qualified(changes_table, schema)
    conn.execute(text(f"""
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
$$"""))
    for obj in objects:
        table = _qualified(obj.table, schema)
        name = obj.name.replace("'", "''")
        conn.execute(text(f'DROP TRIGGER IF EXISTS "_cosell_capture" ON {table}'))
        conn.execute(text(f'CREATE TRIGGER "_cosell_capture" AFTER INSERT OR UPDATE OR DELETE ON {table} '
                          f"FOR EACH ROW EXECUTE FUNCTION {function}('{name}')"))
