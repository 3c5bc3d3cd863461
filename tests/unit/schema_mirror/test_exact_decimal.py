"""ExactDecimal on SQLite: numbers SQL can compare, read back as Decimal at the field's scale,
and a value SQLite cannot hold exactly refused instead of rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, exc, insert, select, text

from connector.schema_mirror.types import ExactDecimal


@pytest.fixture
def amounts():
    engine = create_engine("sqlite://")
    table = Table("deal", MetaData(), Column("id", Integer, primary_key=True), Column("amount", ExactDecimal(18, 2)))
    table.metadata.create_all(engine)
    yield engine, table
    engine.dispose()


def _store(engine, table, *values):
    with engine.begin() as conn:
        conn.execute(insert(table), [{"amount": v} for v in values])


def test_values_round_trip_as_decimal_at_the_scale(amounts):
    engine, table = amounts
    _store(engine, table, Decimal("123.45"), Decimal("100000"), Decimal("0.1"), Decimal("12345678901234567"),
           Decimal("123456789012.34"))
    with engine.connect() as conn:
        got = conn.execute(select(table.c.amount).order_by(table.c.id)).scalars().all()
        kinds = conn.execute(text("SELECT typeof(amount) FROM deal ORDER BY id")).scalars().all()
    assert got == [Decimal("123.45"), Decimal("100000.00"), Decimal("0.10"), Decimal("12345678901234567.00"),
                   Decimal("123456789012.34")]
    assert [str(v) for v in got][:3] == ["123.45", "100000.00", "0.10"], "read at the field's scale"
    assert kinds == ["real", "integer", "real", "integer", "real"], "SQLite numbers, not text"


def test_extra_decimals_are_quantized_to_the_scale(amounts):
    engine, table = amounts
    _store(engine, table, Decimal("19.999"), "7.5")
    with engine.connect() as conn:
        assert conn.execute(select(table.c.amount).order_by(table.c.id)).scalars().all() == [
            Decimal("20.00"), Decimal("7.50")]


def test_a_value_beyond_15_significant_digits_is_refused_not_rounded(amounts):
    engine, table = amounts
    with pytest.raises(exc.StatementError) as raised:
        _store(engine, table, Decimal("1234567890123456.78"))
    message = str(raised.value.orig)
    assert isinstance(raised.value.orig, ValueError)
    assert "1234567890123456.78" in message and "15 significant digits" in message and "PostgreSQL" in message
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM deal")).scalar() == 0


def test_sql_compares_sorts_and_adds_numerically(amounts):
    engine, table = amounts
    values = [Decimal("9.50"), Decimal("100000.00"), Decimal("100000.01"), Decimal("2000000"), Decimal("99999.99")]
    _store(engine, table, *values)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM deal WHERE amount > 100000")).scalar() == 2
        assert conn.execute(text("SELECT MAX(amount) FROM deal")).scalar() == 2000000
        assert conn.execute(select(table.c.amount).order_by(table.c.amount)).scalars().all() == sorted(values)
        assert Decimal(repr(conn.execute(text("SELECT SUM(amount) FROM deal")).scalar())) == sum(values)


def test_numbers_an_older_version_stored_as_text_read_back_as_decimal(amounts):
    engine, table = amounts
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE old_deal (id INTEGER PRIMARY KEY, amount VARCHAR(20))"))
        conn.execute(text("INSERT INTO old_deal (amount) VALUES ('1234567890123456.78'), ('12.50')"))
    old = Table("old_deal", MetaData(), Column("id", Integer, primary_key=True), Column("amount", ExactDecimal(18, 2)))
    with engine.connect() as conn:
        assert conn.execute(select(old.c.amount).order_by(old.c.id)).scalars().all() == [
            Decimal("1234567890123456.78"), Decimal("12.50")]
