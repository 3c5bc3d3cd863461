"""How the sync holds a record's values: the base (the values both sides last agreed on, as
stored in each row's `_base` column) and the wire form a local value takes on its way to
Salesforce. Pure functions of a schema and values; this module never touches a database or
the network."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from connector.schema_mirror.model import FieldSchema, ObjectSchema
from connector.sync.ledger import encode

__all__ = ["SYSTEM_FIELDS", "UTC", "NotSendable", "decode_base", "encode_base", "exact_number", "fields_by_name",
           "wire"]

# Fields the org maintains; never compared as changes, never written.
SYSTEM_FIELDS = frozenset({"Id", "IsDeleted", "SystemModstamp", "LastModifiedDate", "LastModifiedById",
                           "CreatedDate", "CreatedById", "LastActivityDate", "LastViewedDate",
                           "LastReferencedDate"})
UTC = dt.timezone.utc


class NotSendable(ValueError):
    """A local value Salesforce cannot hold as it is (it would refuse or round it)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def fields_by_name(obj: ObjectSchema) -> dict[str, FieldSchema]:
    return {f.name: f for f in obj.fields}


def encode_base(values: dict[str, Any]) -> str:
    return json.dumps({k: encode(v) for k, v in values.items()}, separators=(",", ":"), sort_keys=True)


def decode_base(obj: ObjectSchema, raw: str | None) -> dict[str, Any] | None:
    """A row's `_base` as Python values of the object's fields (None: the row has no base yet)."""
    if not raw:
        return None
    by_name = fields_by_name(obj)
    out = {}
    for name, value in json.loads(raw).items():
        f = by_name.get(name)
        out[name] = f.to_python(value) if f is not None else value
    return out


def wire(f: FieldSchema, value: Any) -> Any:
    """A local value as the REST API takes it."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return exact_number(f, value)     # the client writes it as the exact JSON literal
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    return value


def exact_number(f: FieldSchema, value: Decimal) -> Decimal | int:
    """A decimal as Salesforce takes it: exact, within the field's precision and scale, or refused
    (never rounded: Salesforce would round extra decimals and refuse extra integer digits)."""
    if not value.is_finite():
        raise NotSendable(f.name, f"{f.name}: {value} is not a number Salesforce can store")
    if f.precision:
        digits = max(value.adjusted() + 1, 0)
        if digits > f.precision - f.scale:
            raise NotSendable(f.name, f"{f.name}: {value} has {digits} digits before the decimal point; the field "
                                      f"holds {f.precision - f.scale} (precision {f.precision}, scale {f.scale})")
        if value != value.quantize(Decimal(1).scaleb(-f.scale), rounding="ROUND_DOWN"):
            raise NotSendable(f.name, f"{f.name}: {value} has more than {f.scale} decimal places, which Salesforce "
                                      "would round")
    if f.scale == 0 or value == value.to_integral_value():
        return int(value) if f.sf_type in ("int", "long") or f.scale == 0 else value
    return value
