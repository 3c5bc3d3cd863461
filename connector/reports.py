"""Reports read from the mirrored tables: the partner attribution report, in the
corporate currency at the dated rates. The arithmetic lives in the pure co-sell
package; this module only reads rows and hands them over."""

from __future__ import annotations

import json

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
        deals = [Deal(r.sfid or r._uuid, r.name, r.amount, getattr(r, "currencyisocode", None), r.closedate,
                      bool(r.isclosed), bool(r.iswon))
                 for r in conn.execute(select(opp))]
        p = part.c
        credits = [Credit(r.opportunity__c, r.partner_account__c or "", names.get(r.partner_account__c, "(no partner)"),
                          r.attribution__c, r.split_type__c, r.split_percent__c)
                   for r in conn.execute(select(p.opportunity__c, p.partner_account__c, p.attribution__c,
                                                p.split_type__c, p.split_percent__c))]
    return attribute(deals, credits, rates.convert, period=period)


def render(rows: list[AttributionRow], fmt: str) -> str:
    if fmt == "json":
        return json.dumps([r.as_dict() for r in rows], indent=2)
    if fmt == "csv":
        return csv_text((r.as_dict() for r in rows), list(AttributionRow("", "", "", "").as_dict()))
    raise ValueError(f"unknown format {fmt!r}; choose one of: table, csv, json")


__all__ = ["attribution_report", "render"]
