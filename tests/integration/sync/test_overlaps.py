"""Account overlaps against a synced org, on SQLite and PostgreSQL: a messy export (mixed-case
and www. domains, subsidiaries sharing a domain, a partner's duplicate records, accounts the
org does not have) matched to the mirrored accounts; re-imports; stale overlaps; refused files;
and the whole way from an overlap to an approved registration with the leading indicator."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from connector.overlaps import OverlapBook, OverlapError, OverlapFileError, pipeline_report
from connector.portal import Portal
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture

T0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.timezone.utc)
HEADER = "Partner,Partner Account Name,Domain,Partner Population,Partner Record ID,Country\n"
EXPORT = HEADER + (
    "Ovl Partner Systems,ACME OVL Corp,WWW.Acme-Ovl.COM,Customers,p-1,USA\n"            # 2 domain, messy case
    "Ovl Partner Systems,Acme Ovl (duplicate),https://acme-ovl.com/,Prospects,p-2,\n"   # 3 partner's duplicate
    "Ovl Partner Systems,Globex Ovl GmbH,globex-ovl.com,Open Opportunities,p-3,Germany\n"  # 4 subsidiary by name
    "Ovl Partner Systems,Globex Ovl Holding,globex-ovl.com,Customers,p-4,France\n"      # 5 ambiguous -> review
    "Ovl Partner Systems,Initech Ovl,,Open Opportunities,p-5,\n"                        # 6 name only -> review
    "Ovl Partner Systems,Hooli Ovl,hooli-ovl.xyz,Prospects,p-6,USA\n"                   # 7 not in the org
    "Ovl Partner Systems,Umbrella Ovl,umbrella-ovl.com,Open Opportunities,p-7,Canada\n"  # 8 domain
)


class Org:
    """The accounts the export refers to, created in the emulator and synced to the portal."""

    def __init__(self, h: Harness):
        create = h.org.create
        self.partner = create("Account", {"Name": "Ovl Partner Systems", "Is_Partner__c": True,
                                          "Partner_Type__c": "System Integrator"})
        self.acme = create("Account", {"Name": "Acme Ovl Corporation", "Website": "http://www.acme-ovl.com",
                                       "BillingCountry": "United States", "Type": "Prospect"})
        self.globex_us = create("Account", {"Name": "Globex Ovl Inc.", "Website": "globex-ovl.com",
                                            "BillingCountry": "United States"})
        self.globex_de = create("Account", {"Name": "Globex Ovl GmbH", "Website": "globex-ovl.com",
                                            "BillingCountry": "Germany"})
        self.initech = create("Account", {"Name": "Initech Ovl", "BillingCountry": "United Kingdom"})
        self.umbrella = create("Account", {"Name": "Umbrella Ovl", "Website": "umbrella-ovl.com",
                                           "BillingCountry": "Canada", "Type": "Prospect"})
        h.sync()


def _export(tmp_path, text: str, name: str = "overlaps.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def _snapshot(book: OverlapBook):
    with book.engine.connect() as conn:
        return ([dict(r) for r in conn.execute(select(book.overlaps).order_by(book.overlaps.c.id)).mappings()],
                conn.execute(select(func.count()).select_from(book.imports)).scalar())


def test_a_messy_export_matches_what_it_can_and_lists_the_rest_for_review(h, tmp_path):  # noqa: F811
    org = Org(h)
    book = OverlapBook.for_sync(h.engine)
    result = book.import_file(_export(tmp_path, EXPORT), at=T0)
    by_line = {r.line: r for r in result.rows}
    assert {line: r.status for line, r in by_line.items()} == {
        2: "matched", 3: "matched", 4: "matched", 5: "review", 6: "review", 7: "unmatched", 8: "matched"}
    rows = {r["partner_record_id"]: r for r in book.list()}
    # The partner's two records of one company both land on the one Acme account.
    assert rows["p-1"]["account_sfid"] == rows["p-2"]["account_sfid"] == org.acme
    assert rows["p-1"]["match_method"] == "domain"
    # "Globex Ovl GmbH" and "Globex Ovl Inc." share the domain and (without legal forms) the name.
    assert (rows["p-3"]["account_sfid"], rows["p-3"]["match_method"]) == (org.globex_de, "domain+name+country")
    assert org.globex_us in rows["p-4"]["candidates"] and org.globex_de in rows["p-4"]["candidates"]
    assert org.initech in rows["p-5"]["candidates"] and "no country" in rows["p-5"]["match_reason"]
    assert rows["p-6"]["account_uuid"] is None
    assert rows["p-7"]["account_sfid"] == org.umbrella and rows["p-7"]["our_population"] == "Prospects"
    assert {r["partner_uuid"] for r in rows.values()} == {h.rows("Account", h.tables["Account"].c.sfid
                                                                 == org.partner)[0]["_uuid"]}

    before = _snapshot(book)
    again = book.import_file(_export(tmp_path, EXPORT), at=T0 + dt.timedelta(days=1))
    assert again.changed == 0 and {r.change for r in again.rows} == {"unchanged"}
    assert _snapshot(book) == before, "re-importing the same file wrote something"

    # The next export names the partner by its Salesforce Id: the same overlaps, none new, none removed.
    by_id = book.import_file(_export(tmp_path, EXPORT.replace("Ovl Partner Systems,", f"{org.partner},"), "id.csv"),
                             at=T0 + dt.timedelta(days=1))
    assert (by_id.count(change="new"), by_id.removed, len(book.list())) == (0, 0, 7)
    book.import_file(_export(tmp_path, EXPORT), at=T0 + dt.timedelta(days=1))

    # An admin settles the review row; the choice survives the next import of the same row.
    book.resolve(rows["p-4"]["id"], org.globex_us)
    book.import_file(_export(tmp_path, EXPORT), at=T0 + dt.timedelta(days=2))
    settled = book.get(rows["p-4"]["id"])
    assert (settled["status"], settled["match_method"], settled["account_sfid"]) == ("matched", "manual",
                                                                                     org.globex_us)


def test_an_updated_export_reports_what_went_stale(h, tmp_path):  # noqa: F811
    org = Org(h)
    book = OverlapBook.for_sync(h.engine)
    book.import_file(_export(tmp_path, EXPORT), at=T0)
    other_owner = next(u["Id"] for u in h.org.records("SELECT Id FROM User")
                       if u["Id"] != h.org.get("Account", org.acme)["OwnerId"])
    h.tick()
    h.org.update("Account", org.acme, {"OwnerId": other_owner})
    h.org.update("Account", org.umbrella, {"Type": "Customer - Direct"})
    h.org.delete("Account", org.globex_de)
    h.sync()
    updated = EXPORT.replace("Initech Ovl,,Open Opportunities", "Initech Ovl,,Customers")
    updated = "\n".join(line for line in updated.splitlines() if ",p-6," not in line) + "\n"
    result = book.import_file(_export(tmp_path, updated, "v2.csv"), at=T0 + dt.timedelta(days=7))
    stale = {s.account_name: s.what for s in result.stale}
    assert stale["ACME OVL Corp"].startswith("account changed owner")
    assert stale["Acme Ovl (duplicate)"].startswith("account changed owner")
    assert stale["Umbrella Ovl"] == "account became a customer (Type Prospect -> Customer - Direct)"
    assert "was deleted in Salesforce" in stale["Globex Ovl GmbH"]
    assert stale["Initech Ovl"] == "partner population Open Opportunities -> Customers"
    assert stale["Hooli Ovl"] == "no longer in the partner's export"
    assert result.removed == 1 and len(stale) == 6
    rows = {r["partner_record_id"]: r for r in book.list()}
    assert rows["p-3"]["status"] != "matched" and rows["p-6"]["status"] == "removed"
    assert rows["p-7"]["our_population"] == "Customers"


def test_a_refused_file_and_an_unknown_partner_change_nothing(h, tmp_path):  # noqa: F811
    Org(h)
    book = OverlapBook.for_sync(h.engine)
    book.import_file(_export(tmp_path, EXPORT), at=T0)
    before = _snapshot(book)
    # Tried: a good file with one duplicated line at the end (it also changes line 2's population).
    bad = EXPORT.replace("Customers,p-1", "Prospects,p-1") + "Ovl Partner Systems,Hooli Ovl,hooli-ovl.xyz,Prospects,p-6,USA\n"
    with pytest.raises(OverlapFileError, match="line 9: duplicate of line 7"):
        book.import_file(_export(tmp_path, bad, "bad.csv"), at=T0 + dt.timedelta(days=1))
    # Tried: a partner that is not a partner account in the org.
    unknown = HEADER + "Nobody Partners,Acme,acme-ovl.com,Customers,x-1,USA\n"
    with pytest.raises(OverlapFileError, match="line 2: partner 'Nobody Partners' is no partner account"):
        book.import_file(_export(tmp_path, unknown, "unknown.csv"), at=T0 + dt.timedelta(days=1))
    assert _snapshot(book) == before


def test_overlap_to_approved_registration_with_the_leading_indicator(h, tmp_path):  # noqa: F811
    org = Org(h)
    book = OverlapBook.for_sync(h.engine, writes=True)
    book.import_file(_export(tmp_path, EXPORT), at=T0)
    rows = {r["partner_record_id"]: r for r in book.list()}
    with pytest.raises(OverlapError, match="is review, not matched"):
        book.register(rows["p-4"]["id"])
    first = book.register(rows["p-7"]["id"], close_date=dt.date(2026, 6, 30), at=T0 + dt.timedelta(days=2))
    with pytest.raises(OverlapError, match="already registered"):
        book.register(rows["p-7"]["id"])
    second = book.register(rows["p-1"]["id"], close_date=dt.date(2026, 7, 31), at=T0 + dt.timedelta(days=4))
    h.sync()

    # In Salesforce: the opportunity, a Draft registration and the partner as participant, with the role
    # from its Partner Type and the attribution from the population (Open Opportunities -> Sourced).
    reg = h.rows("Deal_Registration__c", h.tables["Deal_Registration__c"].c._uuid == first["registration_uuid"])[0]
    in_org = h.org.get("Deal_Registration__c", reg["sfid"])
    assert (in_org["Status__c"], in_org["Partner_Account__c"], in_org["End_Customer_Account__c"]) == (
        "Draft", org.partner, org.umbrella)
    opp = h.org.get("Opportunity", in_org["Opportunity__c"])
    assert (opp["Name"], opp["AccountId"]) == ("Umbrella Ovl - Ovl Partner Systems co-sell", org.umbrella)
    (participant,) = h.org.records("SELECT Role__c, Attribution__c, Partner_Account__c FROM Co_Sell_Participant__c "
                                   f"WHERE Opportunity__c = '{opp['Id']}'")
    assert (participant["Role__c"], participant["Attribution__c"], participant["Partner_Account__c"]) == (
        "System Integrator", "Sourced", org.partner)
    acme_participant = h.org.records("SELECT Attribution__c FROM Co_Sell_Participant__c WHERE Opportunity__r.Id = "
                                     f"'{h.rows('Opportunity', h.tables['Opportunity'].c._uuid == second['opportunity_uuid'])[0]['sfid']}'")
    assert acme_participant[0]["Attribution__c"] == "Influenced"        # Customers -> Influenced

    portal = Portal.for_sync(h.engine)
    portal.submit(first["registration_uuid"], at=T0 + dt.timedelta(days=3))
    portal.submit(second["registration_uuid"], at=T0 + dt.timedelta(days=8))
    h.sync()
    assert h.org.get("Deal_Registration__c", reg["sfid"])["Status__c"] == "Submitted"
    h.tick()
    h.org.update("Deal_Registration__c", reg["sfid"], {"Status__c": "Approved", "Decided_At__c": "2026-03-07T09:00:00Z",
                                                       "Expiry_Date__c": "2026-06-30"})
    h.sync()

    report = {r.partner: r for r in pipeline_report(book)}
    mine = report["Ovl Partner Systems"]
    # Five matched overlaps (p-1, p-2, p-3, p-7 and nothing else matched) start the funnel.
    assert mine.overlaps == sum(r["status"] == "matched" for r in book.list())
    assert (mine.registered.count, mine.registered.median_days, mine.registered.p90_days) == (2, 3.0, 4.0)
    assert (mine.submitted.count, mine.submitted.median_days, mine.submitted.p90_days) == (2, 5.5, 8.0)
    assert (mine.approved.count, mine.approved.median_days, mine.approved.p90_days) == (1, 5.0, 5.0)
    assert report["(all partners)"].approved == mine.approved
