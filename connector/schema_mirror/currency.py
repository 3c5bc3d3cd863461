"""Amounts in the corporate currency, as advanced currency management computes them: the
CurrencyType rate, or for opportunities the DatedConversionRate in force on the CloseDate,
rounded HALF_UP to the corporate decimal places. Reads the mirrored rate tables; it never
writes a mirrored row, and in a single-currency org every conversion is the identity."""

from __future__ import annotations

import datetime as dt
import decimal
import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from sqlalchemy import (REAL, Boolean, Connection, Date, Integer, Numeric, String, case, cast, column, false,
                        func, inspect, literal, null, or_, select, table, text)
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import TableClause

from connector.errors import ConfigurationError
from connector.schema_mirror import naming
from connector.schema_mirror.types import ExactDecimal

__all__ = ["DATED_RATE_COLUMNS", "STATIC_RATES", "Currency", "CurrencyError", "CurrencyTable", "DatedRate",
           "UnknownCurrency", "corporate_amounts", "corporate_view_name", "create_corporate_view",
           "drop_corporate_view"]


class _Static(enum.Enum):
    STATIC_RATES = "static rates"


STATIC_RATES: Literal[_Static.STATIC_RATES] = _Static.STATIC_RATES
"""Pass as `date_column` to convert an object at the CurrencyType rate even if it has a dated default."""

DateColumn = str | None | Literal[_Static.STATIC_RATES]

# Salesforce applies dated rates to opportunities (by CloseDate); every other object uses the
# static CurrencyType rate. Keys are table names without prefix; add an entry to give another
# object (say a custom deal object with its own date) dated conversion by default.
DATED_RATE_COLUMNS: dict[str, str] = {"opportunity": "closedate"}

_RATE_SCALE = 6
_WORKING_PRECISION = 50  # an 18-digit amount over a rate never loses a digit before rounding


class CurrencyError(ConfigurationError):
    """The mirrored currency tables cannot answer (no corporate currency, a missing column)."""


class UnknownCurrency(CurrencyError, KeyError):
    def __init__(self, iso_code: str, known: Iterable[str]):
        super().__init__(f"currency {iso_code!r} is not in the mirrored CurrencyType table; "
                         f"known codes: {', '.join(sorted(known)) or '(none)'}")
        self.iso_code = iso_code

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class Currency:
    iso_code: str
    conversion_rate: Decimal
    decimal_places: int
    is_active: bool = True
    is_corporate: bool = False


@dataclass(frozen=True)
class DatedRate:
    iso_code: str
    conversion_rate: Decimal
    start_date: dt.date
    next_start_date: dt.date | None = None

    def covers(self, day: dt.date) -> bool:
        return self.start_date <= day and (self.next_start_date is None or day < self.next_start_date)


def _decimal(value: Any) -> Decimal | None:
    if value is None or isinstance(value, Decimal):
        return value
    return Decimal(str(value))


class CurrencyTable:
    """The org's currencies and dated rates, read once; converts amounts to the corporate currency.

    Built with no currencies it stands for a single-currency org: every amount is already corporate."""

    def __init__(self, currencies: Iterable[Currency] = (), dated_rates: Iterable[DatedRate] = ()):
        self.currencies: dict[str, Currency] = {c.iso_code: c for c in currencies}
        corporate = [c for c in self.currencies.values() if c.is_corporate]
        if self.currencies and len(corporate) != 1:
            raise CurrencyError(f"the mirrored CurrencyType table has {len(corporate)} corporate currencies "
                                f"({', '.join(c.iso_code for c in corporate) or 'none'}); exactly one is needed")
        self._corporate = corporate[0] if corporate else None
        by_code: dict[str, list[DatedRate]] = {}
        for rate in dated_rates:
            by_code.setdefault(rate.iso_code, []).append(rate)
        # latest period first: the first one covering a day wins, as the view's ORDER BY ... DESC LIMIT 1
        self.dated_rates: dict[str, list[DatedRate]] = {
            code: sorted(rates, key=lambda r: r.start_date, reverse=True) for code, rates in by_code.items()}

    @classmethod
    def load(cls, connection: Connection, schema: str | None = None, prefix: str = "") -> CurrencyTable:
        tables = _RateTables.find(connection, schema, prefix)
        if tables.currency_type is None:
            return cls()
        ct = tables.currency_type
        currencies = [
            Currency(iso_code=row.isocode, conversion_rate=row.conversionrate, decimal_places=row.decimalplaces,
                     is_active=bool(row.isactive), is_corporate=bool(row.iscorporate))
            for row in connection.execute(select(ct.c.isocode, ct.c.conversionrate, ct.c.decimalplaces,
                                                 ct.c.isactive, ct.c.iscorporate))]
        if not currencies:
            raise CurrencyError(f"the mirrored table {ct.name} is empty: the currencies have not been "
                                "synced yet, so no amount can be converted")
        dated: list[DatedRate] = []
        if tables.dated_rate is not None:
            dcr = tables.dated_rate
            dated = [DatedRate(row.isocode, row.conversionrate, row.startdate, row.nextstartdate)
                     for row in connection.execute(select(dcr.c.isocode, dcr.c.conversionrate, dcr.c.startdate,
                                                          dcr.c.nextstartdate))]
        return cls(currencies, dated)

    @property
    def corporate(self) -> Currency | None:
        """The corporate currency; None in a single-currency org."""
        return self._corporate

    @property
    def is_multi_currency(self) -> bool:
        return self._corporate is not None

    def rate(self, iso_code: str | None, on: dt.date | None = None) -> Decimal:
        """Units of `iso_code` per corporate unit: the dated rate whose period holds `on`, else the static one.

        A record with no currency code is taken to be in the corporate currency."""
        if self._corporate is None or iso_code is None:
            return Decimal(1)
        currency = self.currencies.get(iso_code)
        if currency is None:
            raise UnknownCurrency(iso_code, self.currencies)
        if on is not None:
            for period in self.dated_rates.get(iso_code, ()):
                if period.covers(on):
                    return period.conversion_rate
        return currency.conversion_rate

    def convert(self, amount: Decimal | None, iso_code: str | None, on: dt.date | None = None) -> Decimal | None:
        """`amount` in `iso_code` expressed in the corporate currency (None stays None)."""
        amount = _decimal(amount)
        if amount is None or self._corporate is None:
            return amount
        rate = self.rate(iso_code, on)
        with decimal.localcontext(prec=_WORKING_PRECISION):
            value = amount / rate
            return value.quantize(Decimal(1).scaleb(-self._corporate.decimal_places), rounding=ROUND_HALF_UP)

    def convert_to(self, amount: Decimal | None, iso_code: str | None, target: str | None,
                   on: dt.date | None = None) -> Decimal | None:
        """`amount` in `iso_code` expressed in `target` (another currency of the org), through the corporate
        rate of each on `on`; rounded to the target's decimal places. None stays None."""
        amount = _decimal(amount)
        if amount is None or self._corporate is None:
            return amount
        places = self.currencies[target].decimal_places if target in self.currencies else \
            self._corporate.decimal_places
        with decimal.localcontext(prec=_WORKING_PRECISION):
            value = amount / self.rate(iso_code, on) * self.rate(target, on)
            return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class _RateTables:
    currency_type: TableClause | None
    dated_rate: TableClause | None

    @classmethod
    def find(cls, connection: Connection, schema: str | None, prefix: str) -> _RateTables:
        ct_name, dcr_name = naming.table_name("CurrencyType", prefix), naming.table_name("DatedConversionRate", prefix)
        existing = set(inspect(connection).get_table_names(schema=schema))
        rate = ExactDecimal(18, _RATE_SCALE)
        currency_type = table(ct_name, column("sfid", String), column("isocode", String),
                              column("conversionrate", rate), column("decimalplaces", Integer),
                              column("isactive", Boolean), column("iscorporate", Boolean),
                              schema=schema) if ct_name in existing else None
        dated_rate = table(dcr_name, column("sfid", String), column("isocode", String),
                           column("conversionrate", rate), column("startdate", Date),
                           column("nextstartdate", Date),
                           schema=schema) if dcr_name in existing and currency_type is not None else None
        return cls(currency_type, dated_rate)


@dataclass(frozen=True)
class _ObjectShape:
    """What conversion needs to know of one mirrored table."""

    table_name: str
    columns: list[str]
    amount_columns: list[str]
    iso_column: str | None
    date_column: str | None
    deleted_column: str | None

    @classmethod
    def of(cls, connection: Connection, object_name: str, amount_columns: Sequence[str], *,
                schema: str | None, prefix: str, date_column: DateColumn) -> _ObjectShape:
        name = naming.table_name(object_name, prefix)
        inspector = inspect(connection)
        if not inspector.has_table(name, schema=schema):
            where = f" in schema {schema}" if schema else ""
            raise CurrencyError(f"no mirrored table {name}{where} for object {object_name}")
        columns = [c["name"] for c in inspector.get_columns(name, schema=schema)]
        amounts = [naming.column_name(c) for c in amount_columns]
        unknown = [c for c in amounts if c not in columns]
        if unknown:
            raise CurrencyError(f"table {name} has no column {', '.join(unknown)}; its columns: "
                                f"{', '.join(c for c in columns if not c.startswith(naming.BOOKKEEPING_PREFIX))}")
        if date_column is STATIC_RATES:
            dated = None
        elif date_column is None:
            default = DATED_RATE_COLUMNS.get(object_name.lower())
            dated = default if default in columns else None
        else:
            dated = naming.column_name(date_column)
            if dated not in columns:
                raise CurrencyError(f"table {name} has no date column {dated} to pick dated rates by")
        return cls(table_name=name, columns=columns, amount_columns=amounts,
                   iso_column="currencyisocode" if "currencyisocode" in columns else None,
                   date_column=dated, deleted_column="isdeleted" if "isdeleted" in columns else None)

    def clause(self, schema: str | None, *, all_columns: bool = False) -> TableClause:
        types = {"sfid": String, "isdeleted": Boolean}
        if self.iso_column:
            types[self.iso_column] = String
        if self.date_column:
            types[self.date_column] = Date
        wanted = self.columns if all_columns else [
            c for c in self.columns if c in types or c in self.amount_columns]
        return table(self.table_name, *(column(c, types.get(c)) for c in wanted), schema=schema)

    def live(self, t: TableClause) -> list[ColumnElement[bool]]:
        if self.deleted_column is None:
            return []
        flag = t.c[self.deleted_column]
        return [or_(flag.is_(None), flag == false())]


def corporate_amounts(connection: Connection, object_name: str, amount_columns: list[str], *,
                      schema: str | None = None, prefix: str = "",
                      date_column: DateColumn = None) -> dict[str, dict[str, Decimal | None]]:
    """{sfid: {column: amount in the corporate currency}} for every live record of one mirrored object.

    `date_column` picks the dated rate (None: the object's default from DATED_RATE_COLUMNS;
    STATIC_RATES: always the CurrencyType rate)."""
    shape = _ObjectShape.of(connection, object_name, amount_columns, schema=schema, prefix=prefix,
                                 date_column=date_column)
    rates = CurrencyTable.load(connection, schema, prefix) if shape.iso_column else CurrencyTable()
    t = shape.clause(schema)
    picked = [t.c.sfid, *(t.c[c] for c in shape.amount_columns)]
    if shape.iso_column:
        picked.append(t.c[shape.iso_column].label("_iso"))
    if shape.date_column:
        picked.append(t.c[shape.date_column].label("_on"))
    out: dict[str, dict[str, Decimal | None]] = {}
    for row in connection.execute(select(*picked).where(*shape.live(t))):
        values = row._mapping
        iso = values["_iso"] if shape.iso_column else None
        on = values["_on"] if shape.date_column else None
        out[values["sfid"]] = {c: rates.convert(_decimal(values[c]), iso, on) for c in shape.amount_columns}
    return out


def corporate_view_name(object_name: str, prefix: str = "") -> str:
    return f"{naming.table_name(object_name, prefix)}_corporate"


def create_corporate_view(connection: Connection, object_name: str, amount_columns: list[str], *,
                          schema: str | None = None, prefix: str = "", date_column: DateColumn = None) -> str:
    """(Re)create the view `<table>_corporate`: every column of the live rows plus `<col>_corporate`
    per amount column, converted in SQL by the same rules as `corporate_amounts`. Returns its name.

    On SQLite amounts are text and the arithmetic goes through REAL; PostgreSQL divides NUMERICs.
    Where nothing converts (single-currency org, no currencyisocode column) `<col>_corporate` is the
    column itself. The view lists the table's columns as they are now: recreate it after the table
    changes (on PostgreSQL it must be dropped before a column it reads can be dropped or retyped)."""
    shape = _ObjectShape.of(connection, object_name, amount_columns, schema=schema, prefix=prefix,
                                 date_column=date_column)
    rate_tables = _RateTables.find(connection, schema, prefix)
    rates = CurrencyTable.load(connection, schema, prefix) if shape.iso_column else CurrencyTable()
    t = shape.clause(schema, all_columns=True)
    dialect = connection.dialect.name
    corporate = rates.corporate
    converted: list[ColumnElement[Any]] = []
    if corporate is None:
        converted = [t.c[c].label(f"{c}_corporate") for c in shape.amount_columns]
    else:
        rate = _rate_sql(t, shape, rate_tables, dialect)
        for c in shape.amount_columns:
            value = func.round(_number(t.c[c], dialect) / rate, corporate.decimal_places)
            converted.append(value.label(f"{c}_corporate"))
    query = select(*t.c, *converted).where(*shape.live(t))
    view = corporate_view_name(object_name, prefix)
    body = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    drop_corporate_view(connection, object_name, schema=schema, prefix=prefix)
    connection.execute(text(f"CREATE VIEW {_qualified(connection, view, schema)} AS {body}"))
    return view


def drop_corporate_view(connection: Connection, object_name: str, *, schema: str | None = None,
                        prefix: str = "") -> None:
    view = corporate_view_name(object_name, prefix)
    connection.execute(text(f"DROP VIEW IF EXISTS {_qualified(connection, view, schema)}"))


def _qualified(connection: Connection, name: str, schema: str | None) -> str:
    quote = connection.dialect.identifier_preparer.quote
    return f"{quote(schema)}.{quote(name)}" if schema else quote(name)


def _number(expr: ColumnElement[Any], dialect: str) -> ColumnElement[Any]:
    # SQLite keeps exact decimals as text; PostgreSQL keeps NUMERIC and must not go through float.
    return cast(expr, REAL if dialect == "sqlite" else Numeric)


def _rate_sql(t: TableClause, shape: _ObjectShape, tables: _RateTables, dialect: str) -> ColumnElement[Any]:
    """The rate of each row: dated period holding the date, else CurrencyType, else 1 for no currency."""
    assert shape.iso_column is not None and tables.currency_type is not None
    iso = t.c[shape.iso_column]
    candidates: list[ColumnElement[Any]] = []
    if shape.date_column and tables.dated_rate is not None:
        dcr = tables.dated_rate.alias("dcr")
        on = t.c[shape.date_column]
        candidates.append(
            select(_number(dcr.c.conversionrate, dialect))
            .where(dcr.c.isocode == iso, dcr.c.startdate <= on,
                   or_(dcr.c.nextstartdate.is_(None), on < dcr.c.nextstartdate))
            .order_by(dcr.c.startdate.desc()).limit(1).scalar_subquery())
    ct = tables.currency_type.alias("ct")
    candidates.append(select(_number(ct.c.conversionrate, dialect)).where(ct.c.isocode == iso)
                      .limit(1).scalar_subquery())
    candidates.append(case((iso.is_(None), _number(literal(1, Integer), dialect)), else_=null()))
    return func.coalesce(*candidates)
