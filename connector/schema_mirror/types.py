"""The Salesforce field type → SQL column type table, with a registration hook.

Money, percentages and doubles are exact decimals with describe's precision and
scale, read back as Decimal: NUMERIC(p, s) on PostgreSQL; on SQLite numbers SQL can
compare and add (INTEGER when whole, else REAL), and a value a REAL cannot hold
exactly is refused, never rounded. Datetimes are timezone-aware UTC on both
databases. An unknown type raises instead of being guessed."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import BigInteger, Boolean, Date, DateTime, Integer, Numeric, String, Text, Time
from sqlalchemy.types import TypeDecorator, TypeEngine

MAX_VARCHAR = 10_485_760  # PostgreSQL's limit for varchar(n)


class FieldShape(Protocol):
    """What the type map needs to know of a field (describe's sizing attributes)."""

    name: str
    sf_type: str
    length: int
    precision: int
    scale: int
    digits: int


class UnknownFieldType(KeyError):
    def __init__(self, sf_type: str, field: str):
        super().__init__(f"field {field} has Salesforce type {sf_type!r}, which the schema mirror does not know; "
                         f"known types: {', '.join(sorted(TYPE_MAP))}. Register a handler with "
                         "connector.schema_mirror.types.register_type().")
        self.sf_type = sf_type


class _SqliteNumber(Numeric):
    """NUMERIC(p, s) in SQLite DDL (numeric affinity) that hands values through untouched:
    SQLAlchemy's own Numeric would send every value through float, integers included."""

    def bind_processor(self, dialect):
        return None

    def result_processor(self, dialect, coltype):
        return None


INT64 = range(-2**63, 2**63)


class ExactDecimal(TypeDecorator):
    """NUMERIC(p, s) on PostgreSQL. On SQLite a column of numeric affinity holding an INTEGER when
    the value is whole and a REAL otherwise, so WHERE, ORDER BY, MAX and SUM are numeric; a value a
    REAL would round raises ValueError instead. Reads are Decimal at the scale, whether the column
    holds numbers or (as versions before 0.2 wrote) text."""

    impl = Numeric
    cache_ok = True

    def __init__(self, precision: int, scale: int):
        super().__init__(precision=precision, scale=scale, asdecimal=True)
        self.precision, self.scale = precision, scale
        self._step = Decimal(1).scaleb(-scale)

    def load_dialect_impl(self, dialect):
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SqliteNumber(self.precision, self.scale, asdecimal=False))
        return dialect.type_descriptor(Numeric(self.precision, self.scale, asdecimal=True))

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        try:
            number = value if isinstance(value, Decimal) else Decimal(str(value))
            number = number.quantize(self._step)
        except InvalidOperation as exc:
            raise ValueError(f"not a number: {value!r}") from exc
        return sqlite_number(number, self.scale) if dialect.name == "sqlite" else number

    def process_result_value(self, value: Any, dialect) -> Decimal | None:
        if value is None:
            return None
        return as_decimal(value).quantize(self._step)


def sqlite_number(number: Decimal, scale: int) -> int | float:
    """`number` (already at `scale`) as the SQLite value that reads back as exactly it: an int when
    whole and within 64 bits, else a float when that float holds every digit; else ValueError."""
    if number == number.to_integral_value() and int(number) in INT64:
        return int(number)
    real = float(number)
    if Decimal(repr(real)).quantize(Decimal(1).scaleb(-scale)) != number:
        raise ValueError(f"{number} cannot be stored exactly on SQLite, which holds 15 significant digits "
                         "exactly (whole numbers up to 18 digits); PostgreSQL holds it as NUMERIC")
    return real


def as_decimal(value: int | float | str | Decimal) -> Decimal:
    """A stored SQLite value (number, or text from older versions) as a Decimal; a float is taken at
    its shortest repr, which is the decimal that was stored."""
    if isinstance(value, float):
        return Decimal(repr(value))
    return value if isinstance(value, Decimal) else Decimal(value)


class UtcDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect) -> Any:
        if value is None:
            return None
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value.replace("Z", "+00:00").replace("+0000", "+00:00"))
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the mirror stores timezone-aware UTC only")
        value = value.astimezone(dt.timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=dt.timezone.utc)
        return value.astimezone(dt.timezone.utc)


TypeFactory = Callable[[FieldShape], TypeEngine]


def _text(field: FieldShape) -> TypeEngine:
    return String(field.length) if 0 < field.length <= MAX_VARCHAR else Text()


def _decimal(field: FieldShape) -> TypeEngine:
    precision = field.precision or 18
    return ExactDecimal(precision, min(field.scale, precision))


def _int(field: FieldShape) -> TypeEngine:
    return Integer() if (field.digits or 9) <= 9 else BigInteger()


TYPE_MAP: dict[str, TypeFactory] = {
    "id": lambda f: String(18),
    "reference": lambda f: String(18),
    "string": _text, "textarea": _text, "picklist": _text, "multipicklist": _text, "combobox": _text,
    "email": _text, "phone": _text, "url": _text, "encryptedstring": _text,
    "boolean": lambda f: Boolean(),
    "int": _int,
    "long": lambda f: BigInteger(),
    "double": _decimal, "currency": _decimal, "percent": _decimal,
    "date": lambda f: Date(),
    "datetime": lambda f: UtcDateTime(),
    "time": lambda f: Time(),
    "base64": lambda f: Text(),
    "anyType": lambda f: Text(),
}
# Compound fields are mirrored by their components (BillingStreet, BillingCity, ...), never as one column.
COMPOUND_TYPES = frozenset({"address", "location"})


def register_type(sf_type: str, factory: TypeFactory) -> None:
    """Teach the mirror a Salesforce type (or override one): `factory(field) -> SQLAlchemy type`."""
    TYPE_MAP[sf_type] = factory


def column_type(field: FieldShape) -> TypeEngine:
    try:
        factory = TYPE_MAP[field.sf_type]
    except KeyError:
        raise UnknownFieldType(field.sf_type, field.name) from None
    return factory(field)
