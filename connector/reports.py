"""Reports read from the mirrored tables: the partner attribution report, in the
corporate currency at the dated rates. The arithmetic lives in the pure co-sell
package; this module only reads rows and hands them over."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from connector.cosell.attribution import AttributionRow, Credit, Deal, Period, attribute
from connector.schema_mirror.currency import CurrencyTable
from connector.schema_mirror.mirror import SchemaMirror
from connector.spreadsheet import csv_text


def attribution_report(mirror: SchemaMirror, *, period: Period = "quarter") -> list[AttributionRow]:
    opp, part, account = (mirror.table(n) for n in ("Opportunity", "Co_Sell_Participant__c", "Account"))
    with mirror.engine.connect() as conn:
        rates = CurrencyTable.load(conn, mirror.schema, mirror.prefix)
        names = dict(conn.execute(select(account.c.sfid, account.c.name)).all())
        deals = [deal_of(r) for r in conn.execute(select(opp))]
        p = part.c
        credits = [credit_of(r, names) for r in conn.execute(select(p.opportunity__c, p.partner_account__c,
                                                                     p.attribution__c, p.split_type__c,
                                                                     p.split_percent__c))]
    return attribute(deals, credits, rates.convert, period=period)


def deal_of(row: Any, key: str | None = None) -> Deal:
    """An Opportunity row as the attribution arithmetic takes it (keyed by its Id, else its UUID)."""
    return Deal(key or row.sfid or row._uuid, row.name, row.amount, getattr(row, "currencyisocode", None),
                row.closedate, bool(row.isclosed), bool(row.iswon))


def credit_of(row: Any, names: dict[str, str], deal_key: str | None = None) -> Credit:
    """A Co_Sell_Participant__c row as a credit on its deal (`deal_key` when the deal is keyed otherwise)."""
    return Credit(deal_key or row.opportunity__c, row.partner_account__c or "",
                  names.get(row.partner_account__c, "(no partner)"), row.attribution__c, row.split_type__c,
                  row.split_percent__c)


def render(rows: list[AttributionRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.as_dict() for r in rows], indent=2)
    if fmt == "csv":
        return csv_text((r.as_dict() for r in rows), list(AttributionRow("", "", "", "").as_dict()))
    raise ValueError(f"unknown format {fmt!r}; choose one of: table, csv, json")


__all__ = ["attribution_report", "credit_of", "deal_of", "render"]
