"""Wire formats of Salesforce values: how the org writes datetimes, dates and
numbers, and how it reads what a client sends for a field of a given type.

Records in the emulator hold wire values, so what is stored is exactly what a
real org would return; coercion errors carry the real error codes. Currency,
percent and double values are Decimals (never floats), as exact as the field's
precision allows."""

from __future__ import annotations

import datetime as dt
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

UTC = dt.timezone.utc
_DATETIME_IN = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?(Z|[+-]\d{2}:?\d{2})?$")
_DATE_IN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
DECIMAL_TYPES = frozenset({"double", "currency", "percent"})
DEFAULT_PRECISION = 18
_STEPS = [Decimal(1).scaleb(-n) for n in range(0, 41)]


def wire_datetime(value: dt.datetime) -> str:
    """`2024-05-01T13:45:07.000+0000`: UTC, whole seconds, offset without a colon."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")


def bulk_datetime(wire: str) -> str:
    """Bulk 2.0 CSV writes the same instant with a `Z` suffix."""
    return wire[:-5] + "Z" if wire.endswith("+0000") else wire


def parse_wire_datetime(text: str) -> dt.datetime:
    """Parse any ISO-8601 datetime a client or the org writes; naive means UTC."""
    m = _DATETIME_IN.match(text.strip())
    if not m:
        raise ValueError(f"not a datetime: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac, tz = m.group(7), m.group(8)
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    tzinfo = UTC
    if tz and tz != "Z":
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        tzinfo = dt.timezone(sign * dt.timedelta(hours=int(digits[:2]), minutes=int(digits[2:])))
    return dt.datetime(year, month, day, hour, minute, second, micro, tzinfo=tzinfo).astimezone(UTC)


def http_date(value: dt.datetime) -> str:
    return value.astimezone(UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_http_date(text: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(text.strip(), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    except ValueError:
        return None


class CoercionError(ValueError):
    """A value the org would refuse for the field; carries the real code and message."""

    def __init__(self, code: str, message: str, fields: list[str]):
        super().__init__(message)
        self.code, self.message, self.fields = code, message, fields


def _json_error(value: Any, kind: str) -> CoercionError:
    token = "VALUE_STRING" if isinstance(value, str) else type(value).__name__.upper()
    return CoercionError("JSON_PARSER_ERROR",
                         f"Cannot deserialize instance of {kind} from {token} value {value} or request may "
                         "be missing a required field", [])


def coerce(ftype: str, value: Any, *, field: str, label: str, length: int = 0, precision: int = 0,
           scale: int = 0, digits: int = 0) -> Any:
    """The stored wire value for `value` sent for a field of type `ftype`, or CoercionError."""
    if value is None:
        return None
    if ftype in ("string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url",
                 "encryptedstring"):
        if isinstance(value, bool) or isinstance(value, (dict, list)):
            raise _json_error(value, "string")
        text = value if isinstance(value, str) else str(value)
        if ftype == "multipicklist":
            text = ";".join(v.strip() for v in text.split(";") if v.strip())
        if length and len(text) > length:
            raise CoercionError("STRING_TOO_LONG",
                                f"{label}: data value too large: {text[:40]} (max length={length})", [field])
        if ftype == "email" and text and not re.match(r"^[^@\s]+@[^@\s]+\.[^@\s]+$", text):
            raise CoercionError("INVALID_EMAIL_ADDRESS", f"{label}: invalid email address: {text}", [field])
        return text
    if ftype == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise _json_error(value, "boolean")
    if ftype in ("int", "long"):
        number = _number(value, "int")
        if number != number.to_integral_value():
            raise _json_error(value, "int")
        if digits and abs(number) >= 10 ** digits:  # an int field holds `digits` digits, as a decimal one
            raise _out_of_range(number, field, label)
        return int(number)
    if ftype in DECIMAL_TYPES:
        number = _number(value, "double")
        stored = exact_decimal(number, scale)
        if abs(stored) >= _STEPS[0].scaleb((precision or DEFAULT_PRECISION) - scale):
            raise _out_of_range(number, field, label)
        return stored
    if ftype == "date":
        if not isinstance(value, str):
            raise _json_error(value, "date")
        text = value[:10] if _DATETIME_IN.match(value) else value
        if not _DATE_IN.match(text):
            raise _json_error(value, "date")
        try:
            dt.date.fromisoformat(text)
        except ValueError as exc:
            raise _json_error(value, "date") from exc
        return text
    if ftype == "datetime":
        if not isinstance(value, str):
            raise _json_error(value, "datetime")
        try:
            return wire_datetime(parse_wire_datetime(value))
        except ValueError as exc:
            raise _json_error(value, "datetime") from exc
    if ftype == "time":
        if not isinstance(value, str) or not re.match(r"^\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?Z?$", value):
            raise _json_error(value, "time")
        hh_mm_ss = (value.rstrip("Z") + ":00")[:8]
        return f"{hh_mm_ss}.000Z"
    return value


def _out_of_range(number: Decimal, field: str, label: str) -> CoercionError:
    return CoercionError("NUMBER_OUTSIDE_VALID_RANGE",
                         f"{label}: value outside of valid range on numeric field: {format(number, 'f')}", [field])


def exact_decimal(number: Decimal | float | int, scale: int) -> Decimal:
    """`number` as the org stores it: a Decimal with no more than `scale` decimals (extra ones are
    rounded half up, as Salesforce rounds them) and no exponent above zero. A float is taken at its
    shortest repr, so 0.1 is 0.1 and not the binary fraction nearest to it."""
    if not isinstance(number, Decimal):
        number = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    exponent = number.as_tuple().exponent
    if exponent < -scale:
        return number.quantize(_STEPS[scale], rounding=ROUND_HALF_UP)
    if exponent > 0:
        return number.quantize(_STEPS[0])
    return number


def _number(value: Any, kind: str) -> Decimal:
    """A JSON number or numeric string as an exact Decimal, or the org's JSON_PARSER_ERROR."""
    if isinstance(value, bool):
        raise _json_error(value, kind)
    try:
        if isinstance(value, Decimal):
            number = value
        elif isinstance(value, float):
            number = Decimal(repr(value))
        elif isinstance(value, (int, str)):
            number = Decimal(value.strip() if isinstance(value, str) else value)
        else:
            raise _json_error(value, kind)
    except InvalidOperation:
        raise _json_error(value, kind) from None
    if not number.is_finite():
        raise _json_error(value, kind)
    return number
