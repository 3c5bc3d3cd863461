"""Co-sell rules as a channel-operations analyst meets them (issue 14), on both databases:
a split change under review waits, a second Sourced partner is refused up front and never
parks the legitimate one, and a deal created in the portal is in the attribution report
before the sync has pulled it back."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import insert, update

from connector.portal import Portal, PortalError
from connector.reports import attribution_report
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture


def _reviewed_deal(h, status="Under Review"):
    """An opportunity with two revenue participants (70/30) and a registration in `status`, synced."""
    reseller = h.org.create("Account", {"Name": "Review Reseller", "Is_Partner__c": True})
    integrator = h.org.create("Account", {"Name": "Review Integrator", "Is_Partner__c": True})
    customer = h.org.create("Account", {"Name": "Review Customer"})
    opp = h.org.create("Opportunity", {"Name": "Reviewed deal", "StageName": "Qualification",
                                       "CloseDate": "2026-10-31", "Amount": 50000, "AccountId": customer})
    parts = [h.org.create("Co_Sell_Participant__c", {
        "Opportunity__c": opp, "Partner_Account__c": who, "Role__c": role, "Attribution__c": attribution,
        "Split_Type__c": "Revenue", "Split_Percent__c": pct})
        for who, role, attribution, pct in ((reseller, "Reseller", "Sourced", 70),
                                            (integrator, "System Integrator", "Delivered", 30))]
    reg = h.org.create("Deal_Registration__c", {"Opportunity__c": opp, "Status__c": status,
                                                "Partner_Account__c": reseller, "End_Customer_Account__c": customer,
                                                "Submitted_At__c": "2026-11-20T10:00:00Z"})
    h.sync()
    return opp, parts, reg


def _splits(h, parts):
    return [h.org.get("Co_Sell_Participant__c", p)["Split_Percent__c"] for p in parts]


def test_a_split_change_made_under_review_waits_for_the_decision(h):
    opp, parts, reg = _reviewed_deal(h)
    portal = Portal.for_sync(h.engine)
    portal.set_splits(opp, {parts[0]: ("Revenue", Decimal("60")), parts[1]: ("Revenue", Decimal("40"))})
    held = h.sync()
    assert held.objects["Co_Sell_Participant__c"].waiting == 2
    assert _splits(h, parts) == [70, 30], "the compensation under review is not changed before the decision"
    h.tick()
    h.org.update("Deal_Registration__c", reg, {"Status__c": "Approved", "Expiry_Date__c": "2027-03-31",
                                               "Decided_At__c": "2026-12-01T09:00:00Z"})
    h.sync()
    assert _splits(h, parts) == [60, 40], "sent once the review ended"


def test_an_attribution_change_under_review_waits_too(h):
    _, parts, _ = _reviewed_deal(h, "Submitted")
    t = h.tables["Co_Sell_Participant__c"]
    h.execute(update(t).where(t.c.sfid == parts[1]).values(attribution__c="Influenced", notes__c="kick-off done"))
    h.sync()
    remote = h.org.get("Co_Sell_Participant__c", parts[1])
    assert remote["Attribution__c"] == "Delivered", "held"
    assert remote["Notes__c"] == "kick-off done", "fields outside the review still flow"


def test_a_second_sourced_partner_is_refused_up_front(h):
    opp, parts, _ = _reviewed_deal(h, "Draft")
    other = h.org.create("Account", {"Name": "Late Claimant", "Is_Partner__c": True})
    h.sync()
    portal = Portal.for_sync(h.engine)
    before = len(h.rows("Co_Sell_Participant__c"))
    with pytest.raises(PortalError, match="already Sourced by participant .*add this partner as Influenced"):
        portal.add_participant(opp, other, role="Referral Partner", attribution="Sourced")
    with pytest.raises(PortalError, match="already Sourced"):
        portal.register_deal(partner=other, end_customer=h.rows("Account", h.tables["Account"].c.name ==
                                                                 "Review Customer")[0]["sfid"], opportunity=opp)
    with pytest.raises(PortalError, match="revenue splits total 110.00%.*use set_splits"):
        portal.add_participant(opp, other, role="Referral Partner", attribution="Influenced",
                               split_type="Revenue", split_percent=Decimal("10"))
    assert len(h.rows("Co_Sell_Participant__c")) == before, "nothing written"
    portal.add_participant(opp, other, role="Referral Partner", attribution="Influenced")
    h.sync()
    assert len(h.org.records(f"SELECT Id FROM Co_Sell_Participant__c WHERE Opportunity__c = '{opp}'")) == 3


def test_a_second_sourced_row_written_by_sql_parks_only_the_newcomer(h):
    opp, parts, _ = _reviewed_deal(h, "Draft")
    other = h.org.create("Account", {"Name": "SQL Claimant", "Is_Partner__c": True})
    h.sync()
    t = h.tables["Co_Sell_Participant__c"]
    h.execute(update(t).where(t.c.sfid == parts[0]).values(notes__c="customer workshop booked"))
    h.execute(insert(t).values(opportunity__c=opp, partner_account__c=other, role__c="Referral Partner",
                               attribution__c="Sourced"))
    report = h.sync()
    assert report.objects["Co_Sell_Participant__c"].parked == 1
    assert h.org.get("Co_Sell_Participant__c", parts[0])["Notes__c"] == "customer workshop booked", \
        "the legitimate Sourced partner's edit is not parked for the newcomer"
    legit = h.rows("Co_Sell_Participant__c", t.c.sfid == parts[0])[0]
    assert legit["_sync_error"] is None
    newcomer = h.rows("Co_Sell_Participant__c", t.c.partner_account__c == other)[0]
    assert newcomer["sfid"] is None and "2 participants are Sourced" in newcomer["_sync_error"]


def test_a_deal_created_in_the_portal_is_in_the_attribution_report_before_the_next_pull(h):
    h.sync()
    portal = Portal.for_sync(h.engine)
    partner = h.org.create("Account", {"Name": "Portal Report Partner", "Is_Partner__c": True})
    customer = h.org.create("Account", {"Name": "Portal Report Customer"})
    h.sync()
    deal = portal.register_deal(partner=partner, end_customer=customer, name="Portal-only deal",
                                amount=Decimal("80000"), currency="USD", close_date=dt.date(2027, 2, 15),
                                role="Reseller", attribution="Sourced")
    portal.set_splits(deal.opportunity, {deal.participant: ("Revenue", Decimal("100"))})
    rows = [r for r in attribution_report(h.mirror, period="quarter") if r.partner_name == "Portal Report Partner"]
    assert [(r.period, r.attribution, r.deals, r.pipeline, r.split_pipeline) for r in rows] == [
        ("2027-Q1", "Sourced", 1, Decimal("80000.00"), Decimal("80000.00"))]
    h.sync()   # once Salesforce has it, the same single row: no double count by Id and UUID
    again = [r for r in attribution_report(h.mirror, period="quarter") if r.partner_name == "Portal Report Partner"]
    assert [(r.deals, r.pipeline) for r in again] == [(1, Decimal("80000.00"))]


def test_the_leading_indicator_is_one_row_per_partner_account_named_by_its_current_name(h, tmp_path):
    from connector.overlaps import OverlapBook, pipeline_report

    partner = h.org.records("SELECT Id FROM Account WHERE Name = 'Accenture' AND Is_Partner__c = true")[0]["Id"]
    for n in range(4):
        h.org.create("Account", {"Name": f"Spelling Customer {n}", "Website": f"spelling-{n}.example",
                                 "BillingCountry": "Germany"})
    h.sync()
    export = tmp_path / "overlaps.csv"
    export.write_text("Partner,Account Name,Domain,Partner Population,Partner Record ID,Country\n" + "".join(
        f"{spelling},Spelling Customer {n},spelling-{n}.example,Customers,r-{n},DE\n"
        for n, spelling in enumerate(("Accenture", "accenture", "ACCENTURE", "Accenture plc"))))
    book = OverlapBook.for_sync(h.engine, writes=True)
    result = book.import_file(export, at=dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc))
    assert [r.status for r in result.rows] == ["matched"] * 4, "ISO code DE is Germany"
    rows = [r for r in pipeline_report(book) if r.partner != "(all partners)"]
    assert [(r.partner, r.partner_account, r.overlaps) for r in rows if r.partner_account == partner] == [
        ("Accenture", partner, 4)]
    assert not [r for r in rows if r.partner.casefold().startswith("accenture") and r.partner_account != partner]
    h.tick()
    h.org.update("Account", partner, {"Name": "Accenture Federal Services"})
    h.sync()
    renamed = [r for r in pipeline_report(book) if r.partner_account == partner]
    assert [(r.partner, r.overlaps) for r in renamed] == [("Accenture Federal Services", 4)]


def test_phone_and_duns_match_overlaps_against_the_mirrored_accounts(h, tmp_path):
    from connector.overlaps import OverlapBook

    by_phone = h.org.create("Account", {"Name": "Keyed By Phone Inc", "Phone": "+1 (415) 555-0142",
                                        "BillingCountry": "United States"})
    by_duns = h.org.create("Account", {"Name": "Keyed By Duns GmbH", "DunsNumber": "150483782",
                                       "BillingCountry": "Germany"})
    h.sync()
    export = tmp_path / "keys.csv"
    export.write_text("Partner,Account Name,Domain,Partner Population,Partner Record ID,Country,Phone,DUNS\n"
                      "Accenture,KBP (US subsidiary),,Customers,k-1,USA,415-555-0142,\n"
                      "Accenture,K.B.D. Deutschland,,Prospects,k-2,DEU,,15-048-3782\n")
    book = OverlapBook.for_sync(h.engine, writes=True)
    rows = book.import_file(export, at=dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc)).rows
    assert [r.status for r in rows] == ["matched", "matched"], "no domain, names that settle nothing"
    listed = {r["partner_record_id"]: r for r in book.list()}
    assert (listed["k-1"]["account_sfid"], listed["k-1"]["match_method"]) == (by_phone, "phone")
    assert (listed["k-2"]["account_sfid"], listed["k-2"]["match_method"]) == (by_duns, "duns")
