"""Reports read from the mirrored tables: the partner attribution report, in the
corporate currency at the dated rates. The arithmetic lives in the pure co-sell
package; this module only reads rows and hands them over."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import MetaData, Table, select

from connector.cosell.attribution import AttributionRow, Credit, Deal, Period, attribute
from connector.schema_mirror.currency import CurrencyTable
from connector.schema_mirror.mirror import SchemaMirror
from connector.spreadsheet import csv_text
from connector.schema_mirror.tables import object_table


def attribution_report(mirror: SchemaMirror, *, period: Period = "quarter") -> list[AttributionRow]:
    """Deals and participants keyed by the row's UUID, not its Salesforce Id, so a deal created in the portal
    counts before the sync has pulled it back (its Id, and the participants' links to it, come only then)."""
    opp, part, account = _synced_tables(mirror, "Opportunity", "Co_Sell_Participant__c", "Account")
    with mirror.engine.connect() as conn:
        rates = CurrencyTable.load(conn, mirror.schema, mirror.prefix)
        accounts = conn.execute(select(account.c.sfid, account.c._uuid, account.c.name)).all()
        account_key = {**{r.sfid: r.sfid for r in accounts if r.sfid}, **{r._uuid: r.sfid or r._uuid for r in accounts}}
        names = {r.sfid or r._uuid: r.name for r in accounts}
        deals, deal_key = [], {}
        for r in conn.execute(select(opp)):
            deals.append(Deal(r._uuid, r.name, r.amount, getattr(r, "currencyisocode", None), r.closedate,
                              bool(r.isclosed), bool(r.iswon)))
            deal_key[r._uuid] = r._uuid
            if r.sfid:
                deal_key[r.sfid] = r._uuid
        p = part.c
        credits = []
        for r in conn.execute(select(p.opportunity__c, p._opportunity__c_uuid, p.partner_account__c,
                                     p._partner_account__c_uuid, p.attribution__c, p.split_type__c,
                                     p.split_percent__c)):
            partner = account_key.get(r.partner_account__c or r._partner_account__c_uuid or "", r.partner_account__c)
            credits.append(Credit(deal_key.get(r.opportunity__c or r._opportunity__c_uuid or "", ""), partner or "",
                                  names.get(partner, "(no partner)"), r.attribution__c, r.split_type__c,
                                  r.split_percent__c))
    return attribute(deals, credits, rates.convert, period=period)


def _synced_tables(mirror: SchemaMirror, *names: str) -> list[Table]:
    """The tables as the sync keeps them, with the `_<reference>_uuid` link columns a portal row fills before
    Salesforce has seen its parent (the mirror's own view of a table leaves them out)."""
    schemas = mirror.schemas()
    md = MetaData(schema=mirror.schema)
    missing = [n for n in names if n not in schemas]
    if missing:
        raise KeyError(f"{', '.join(missing)} not mirrored in this database; run `cosell mirror` first")
    return [object_table(schemas[n], md, mirror.engine.dialect) for n in names]


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
