"""SQL access for one partner on PostgreSQL: a database role that reads only that partner's rows.

The role gets a schema of its own name holding security-barrier views (deals, participations,
registrations, overlaps), and USAGE/SELECT on those alone. Each view is the partner scope's own
query (connector.partners.scope), compiled with the partner's keys, so the SQL door and the
service door are one rule. The views run with their owner's rights; the role has no right on any
mirrored or connector table, so `SELECT * FROM opportunity` as the role is refused outright.
SQLite has no roles: there the scoped service is the only door."""

from __future__ import annotations

import re

from sqlalchemy import text
from sqlalchemy.engine import Engine

from connector.partners.scope import PartnerScope
from connector.partners.users import PartnerUserError

VIEWS = ("deals", "participations", "registrations", "overlaps")
_ROLE = re.compile(r"^[a-z][a-z0-9_]{2,62}$")


def _role(name: str) -> str:
    if not _ROLE.match(name) or name.startswith("pg_"):
        raise PartnerUserError(f"role name {name!r}: use 3-63 lower-case letters, digits and _, starting with a "
                               "letter (not pg_)")
    return name


def grant_sql_access(engine: Engine, scope: PartnerScope, role: str, *, password: str | None = None) -> list[str]:
    """Create (or refresh) `role` and its views for the partner `scope` serves; returns the views made.
    Without `password` the role cannot log in: grant it to a login role of your PRM app instead."""
    if engine.dialect.name != "postgresql":
        raise PartnerUserError("SQL access per partner needs PostgreSQL; on SQLite the partner workspace "
                               "(the scoped service) is the only door")
    role = _role(role)
    queries = {"deals": scope.opportunities_query(), "participations": scope.participants_query(),
               "registrations": scope.registrations_query(), "overlaps": scope.overlaps_query()}
    scope.book.ensure_tables()
    with engine.begin() as conn:
        exists = conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first()
        if exists is None:
            conn.execute(text(f'CREATE ROLE "{role}" NOLOGIN NOINHERIT'))
        elif conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r AND (rolsuper OR rolbypassrls)"),
                          {"r": role}).first():
            raise PartnerUserError(f"role {role!r} is a superuser or bypasses security; choose another name")
        if password is not None:
            # ALTER ROLE takes no bind parameters; quote the literal as PostgreSQL does
            literal = "'" + password.replace("'", "''") + "'"
            conn.execute(text(f'ALTER ROLE "{role}" LOGIN PASSWORD {literal}'.replace(":", r"\:")))
        conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{role}"'))
        conn.execute(text(f'REVOKE ALL ON SCHEMA "{role}" FROM PUBLIC'))
        conn.execute(text(f'GRANT USAGE ON SCHEMA "{role}" TO "{role}"'))
        for name, query in queries.items():
            sql = str(query.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
            conn.execute(text(f'DROP VIEW IF EXISTS "{role}"."{name}"'))
            conn.execute(text(f'CREATE VIEW "{role}"."{name}" WITH (security_barrier = true) AS '
                              + sql.replace(":", r"\:")))
            conn.execute(text(f'REVOKE ALL ON "{role}"."{name}" FROM PUBLIC'))
            conn.execute(text(f'GRANT SELECT ON "{role}"."{name}" TO "{role}"'))
    return [f"{role}.{name}" for name in VIEWS]


def revoke_sql_access(engine: Engine, role: str) -> None:
    """Drop the partner's views, its schema and the role."""
    if engine.dialect.name != "postgresql":
        raise PartnerUserError("SQL access per partner exists on PostgreSQL only")
    role = _role(role)
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{role}" CASCADE'))
        if conn.execute(text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).first():
            conn.execute(text(f'DROP OWNED BY "{role}"'))
            conn.execute(text(f'DROP ROLE "{role}"'))


__all__ = ["VIEWS", "grant_sql_access", "revoke_sql_access"]
