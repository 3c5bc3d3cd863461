"""Mirrored money compares, sorts and aggregates as numbers on SQLite and PostgreSQL: SQL a portal
runs over the opportunity table agrees with the same computation over the org's Decimals. A money
column an older version stored as text on SQLite is converted by `cosell mirror`'s drift plan."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.types import as_decimal
from tests.conftest import Database, mapping_for, settings_for

NEAR_THE_LINE = [Decimal("9.50"), Decimal("99999.99"), Decimal("100000.00"), Decimal("100000.01"),
                 Decimal("2000000.00"), Decimal("123456789012.34")]


def _mirror(emulator, database) -> SchemaMirror:
    return SchemaMirror(SalesforceClient(settings_for(emulator)), database.engine, mapping_for(database))


def _load(emulator, database) -> SchemaMirror:
    for amount in NEAR_THE_LINE:
        emulator.create("Opportunity", {"Name": f"Deal {amount}", "StageName": "Prospecting",
                                        "CloseDate": "2026-03-01", "Amount": amount})
    mirror = _mirror(emulator, database)
    plan = mirror.plan()
    mirror.apply(plan)
    mirror.load(plan, ["Opportunity"])
    return mirror


def _org_amounts(emulator) -> list[Decimal]:
    return [r["Amount"] for r in emulator.store.scan("Opportunity") if r.get("Amount") is not None]


def _table(database) -> str:
    return f'"{database.schema}".opportunity' if database.schema else "opportunity"


def _portal_queries(database) -> tuple[int, Decimal, list[Decimal], Decimal]:
    table = _table(database)
    with database.engine.connect() as conn:
        above = conn.execute(text(f"SELECT COUNT(*) FROM {table} WHERE amount > 100000")).scalar()
        top = conn.execute(text(f"SELECT MAX(amount) FROM {table}")).scalar()
        ordered = conn.execute(text(f"SELECT amount FROM {table} WHERE amount IS NOT NULL ORDER BY amount"))
        total = conn.execute(text(f"SELECT SUM(amount) FROM {table} WHERE amount < 1000000000")).scalar()
        return above, as_decimal(top), [as_decimal(v) for v in ordered.scalars()], as_decimal(total)


def test_portal_sql_over_amounts_agrees_with_the_orgs_decimals(emulator, database):
    _load(emulator, database)
    amounts = _org_amounts(emulator)
    above, top, ordered, total = _portal_queries(database)
    assert above == sum(1 for a in amounts if a > 100000)
    assert top == max(amounts)
    assert ordered == sorted(amounts)
    assert total == sum(a for a in amounts if a < 1000000000)


def test_a_text_money_column_from_an_older_version_is_converted_on_sqlite(emulator, tmp_path):
    from connector.bootstrap import make_engine

    database = Database(make_engine(f"sqlite:///{tmp_path / 'old.db'}"), None)
    mirror = _load(emulator, database)
    _make_text_column(database, "opportunity", "amount")
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM opportunity WHERE amount > 100000")).scalar() != sum(
            1 for a in _org_amounts(emulator) if a > 100000), "text compares lexically: the bug being fixed"

    plan = mirror.plan()
    converted = [c for c in plan.changes if c.kind == "convert_column"]
    assert [(c.object_name, c.field_name) for c in converted] == [("Opportunity", "Amount")]
    assert "values converted to numbers" in str(converted[0])
    mirror.apply(plan)

    with database.engine.connect() as conn:
        kinds = set(conn.execute(text("SELECT DISTINCT typeof(amount) FROM opportunity")).scalars())
    assert kinds <= {"integer", "real", "null"}
    amounts = _org_amounts(emulator)
    above, top, ordered, _ = _portal_queries(database)
    assert (above, top, ordered) == (sum(1 for a in amounts if a > 100000), max(amounts), sorted(amounts))
    assert not [c for c in mirror.plan().changes if c.kind == "convert_column"], "converted once"
    database.engine.dispose()


def test_a_text_value_sqlite_cannot_hold_stops_the_conversion_and_keeps_it(emulator, tmp_path):
    from connector.bootstrap import make_engine

    database = Database(make_engine(f"sqlite:///{tmp_path / 'old.db'}"), None)
    mirror = _load(emulator, database)
    _make_text_column(database, "opportunity", "amount")
    with database.engine.begin() as conn:
        conn.execute(text("UPDATE opportunity SET amount = '1234567890123456.78' WHERE _id = 1"))
    with pytest.raises(ValueError, match="1234567890123456.78.*15 significant digits"):
        mirror.apply(mirror.plan())
    with database.engine.connect() as conn:
        assert conn.execute(text("SELECT amount FROM opportunity WHERE _id = 1")).scalar() == "1234567890123456.78"
    database.engine.dispose()


def _make_text_column(database, table: str, column: str) -> None:
    """Turn a numeric column into the VARCHAR of exact text an older version created."""
    with database.engine.begin() as conn:
        rows = conn.execute(text(f"SELECT _id, {column} FROM {table}")).all()
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} VARCHAR(20)"))
        conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE _id = :i"),
                     [{"i": i, "v": None if v is None else f"{as_decimal(v):.2f}"} for i, v in rows])
