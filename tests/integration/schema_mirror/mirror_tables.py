"""Mirrored tables as the table contract describes them, built by hand so these tests do not
depend on the mirror that normally creates them: `_id` primary key, `sfid` unique, one column per
field (lowercased API name) with the mirror's types, plus a way to copy org records into them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Column, Connection, Date, Integer, MetaData, String, Table, insert
from sqlalchemy.types import TypeEngine

from connector.schema_mirror import naming
from connector.schema_mirror.types import ExactDecimal

RATE = ExactDecimal(18, 6)

CONTRACT: dict[str, dict[str, TypeEngine | type]] = {
    "CurrencyType": {"isocode": String(3), "conversionrate": RATE, "decimalplaces": Integer,
                     "isactive": Boolean, "iscorporate": Boolean},
    "DatedConversionRate": {"isocode": String(3), "conversionrate": RATE, "startdate": Date, "nextstartdate": Date},
    "Opportunity": {"name": String(120), "amount": ExactDecimal(18, 2), "currencyisocode": String(3),
                    "closedate": Date, "accountid": String(18), "territory2id": String(18), "isdeleted": Boolean},
    "Account": {"name": String(255), "billingcountry": String(80), "billingstate": String(80),
                "billingpostalcode": String(20), "billingcity": String(40), "annualrevenue": ExactDecimal(18, 0),
                "numberofemployees": Integer, "industry": String(255), "type": String(255),
                "currencyisocode": String(3), "isdeleted": Boolean},
    "Territory2Model": {"name": String(80), "developername": String(80), "state": String(40), "isdeleted": Boolean},
    "Territory2Type": {"developername": String(80), "masterlabel": String(80), "priority": Integer,
                       "isdeleted": Boolean},
    "Territory2": {"name": String(80), "developername": String(80), "territory2modelid": String(18),
                   "territory2typeid": String(18), "parentterritory2id": String(18)},
    "UserTerritory2Association": {"userid": String(18), "territory2id": String(18),
                                  "roleinterritory2": String(40), "isactive": Boolean},
    "ObjectTerritory2Association": {"objectid": String(18), "territory2id": String(18),
                                    "associationcause": String(40), "sobjecttype": String(40), "isdeleted": Boolean},
    "ObjectTerritory2AssignmentRule": {"developername": String(80), "masterlabel": String(80),
                                       "territory2modelid": String(18), "isactive": Boolean,
                                       "booleanfilter": String(255), "objecttype": String(255),
                                       "isdeleted": Boolean},
    "ObjectTerritory2AssignmentRuleItem": {"ruleid": String(18), "sortorder": Integer, "field": String(255),
                                           "operation": String(40), "value": String(255), "isdeleted": Boolean},
    "RuleTerritory2Association": {"ruleid": String(18), "territory2id": String(18), "isinherited": Boolean,
                                  "isdeleted": Boolean},
}
TERRITORY_OBJECTS = [name for name in CONTRACT if "Territory2" in name]


def mirrored_table(metadata: MetaData, object_name: str, columns: Mapping[str, TypeEngine | type], *,
                   schema: str | None = None, prefix: str = "") -> Table:
    return Table(naming.table_name(object_name, prefix), metadata,
                 Column("_id", Integer, primary_key=True, autoincrement=True),
                 Column("sfid", String(18), unique=True),
                 *(Column(name, type_) for name, type_ in columns.items()),
                 schema=schema)


def create_tables(connection: Connection, objects: Iterable[str], *, schema: str | None = None,
                  prefix: str = "", overrides: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Table]:
    """The contract tables of `objects` (optionally with other columns), created in the database."""
    metadata, overrides = MetaData(), overrides or {}
    tables = {name: mirrored_table(metadata, name, overrides[name] if name in overrides else CONTRACT[name],
                                   schema=schema, prefix=prefix) for name in objects}
    metadata.create_all(connection)
    return tables


def _from_wire(value: Any, type_: Any) -> Any:
    """A Salesforce wire value (JSON) as the mirror stores it in a column of `type_`."""
    if value is None:
        return None
    if isinstance(type_, Date):
        return dt.date.fromisoformat(value)
    if isinstance(type_, ExactDecimal):
        return Decimal(str(value))
    if isinstance(type_, Integer):
        return int(value)
    if isinstance(type_, Boolean):
        return bool(value)
    return str(value)


def copy_from_org(connection: Connection, org, tables: Mapping[str, Table]) -> dict[str, list[dict[str, Any]]]:
    """Copy every record (deleted ones too) of each table's object from the emulator's store.

    Returns the wire records by object, for comparing against the org afterwards."""
    copied: dict[str, list[dict[str, Any]]] = {}
    for object_name, tbl in tables.items():
        records = org.records(f"SELECT Id FROM {object_name}", include_deleted=True)
        copied[object_name] = records
        rows = []
        for record in records:
            by_column = {naming.column_name(k): v for k, v in record.items()}
            rows.append({c.name: _from_wire(by_column.get(c.name), c.type) for c in tbl.columns if c.name != "_id"})
        if rows:
            connection.execute(insert(tbl), rows)
    return copied
