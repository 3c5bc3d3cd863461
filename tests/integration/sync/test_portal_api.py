"""The portal's Python API (connector.portal) writes locally; the sync carries the
deal to Salesforce linked together; bad requests are refused before anything is written."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from connector.portal import Portal, PortalError
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture


def _count(h, name):
    with h.database.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(h.tables[name])).scalar()


def test_a_deal_registered_in_the_portal_reaches_salesforce_linked(h):
    h.sync()
    portal = Portal.for_sync(h.engine)
    partner = h.org.records("SELECT Id FROM Account WHERE Is_Partner__c = true LIMIT 1")[0]["Id"]
    customer = h.org.records("SELECT Id FROM Account WHERE Is_Partner__c = false LIMIT 1")[0]["Id"]
    deal = portal.register_deal(partner=partner, end_customer=customer, name="Portal-registered migration",
                                amount=Decimal("120000"), currency="EUR", close_date=dt.date(2026, 12, 15),
                                role="Reseller", attribution="Sourced")
    integrator = h.org.records("SELECT Id FROM Account WHERE Partner_Type__c = 'System Integrator' LIMIT 1")[0]["Id"]
    si = portal.add_participant(deal.opportunity, integrator, role="System Integrator", attribution="Delivered")
    portal.set_splits(deal.opportunity, {deal.participant: ("Revenue", Decimal("70")),
                                         si: ("Revenue", Decimal("30"))})
    portal.submit(deal.registration)
    report = h.sync()
    assert report.status == "succeeded", report.error
    opp = h.org.records("SELECT Id, AccountId, Amount, CurrencyIsoCode FROM Opportunity "
                        "WHERE Name = 'Portal-registered migration'")
    assert len(opp) == 1 and opp[0]["AccountId"] == customer and opp[0]["CurrencyIsoCode"] == "EUR"
    parts = h.org.records(f"SELECT Role__c, Split_Percent__c FROM Co_Sell_Participant__c "
                          f"WHERE Opportunity__c = '{opp[0]['Id']}' ORDER BY Split_Percent__c DESC")
    assert [(p["Role__c"], p["Split_Percent__c"]) for p in parts] == [("Reseller", 70), ("System Integrator", 30)]
    reg = h.org.records(f"SELECT Status__c, Partner_Account__c, Submitted_At__c FROM Deal_Registration__c "
                        f"WHERE Opportunity__c = '{opp[0]['Id']}'")
    assert reg[0]["Status__c"] == "Submitted" and reg[0]["Partner_Account__c"] == partner
    assert reg[0]["Submitted_At__c"] is not None


def test_bad_requests_are_refused_before_anything_is_written(h):
    h.sync()
    portal = Portal.for_sync(h.engine)
    partner = h.org.records("SELECT Id FROM Account WHERE Is_Partner__c = true LIMIT 1")[0]["Id"]
    before = {n: _count(h, n) for n in ("Opportunity", "Deal_Registration__c", "Co_Sell_Participant__c")}
    with pytest.raises(PortalError, match="Cloud Provider"):   # the valid roles are listed
        portal.register_deal(partner=partner, end_customer=partner, name="x", close_date=dt.date(2026, 1, 1),
                             role="Kingmaker")
    with pytest.raises(PortalError, match="same account"):
        portal.register_deal(partner=partner, end_customer=partner, name="x", close_date=dt.date(2026, 1, 1))
    with pytest.raises(PortalError, match="no Account"):
        portal.register_deal(partner=partner, end_customer="001000000000000AAA", name="x",
                             close_date=dt.date(2026, 1, 1))
    assert {n: _count(h, n) for n in before} == before
    customer = h.org.records("SELECT Id FROM Account WHERE Is_Partner__c = false LIMIT 1")[0]["Id"]
    deal = portal.register_deal(partner=partner, end_customer=customer, name="Splits", close_date=dt.date(2026, 3, 1))
    with pytest.raises(PortalError, match="not 100%"):
        portal.set_splits(deal.opportunity, {deal.participant: ("Revenue", Decimal("90"))})
    with pytest.raises(PortalError, match="a partner cannot move a registration from Draft to Approved"):
        portal._move(deal.registration, "Approved", at=None)
    portal.withdraw(deal.registration)
    with pytest.raises(PortalError):
        portal.submit(deal.registration)   # withdrawn is final


def test_a_second_partner_registering_the_same_deal_is_flagged(h):
    h.sync()
    portal = Portal.for_sync(h.engine)
    partners = [r["Id"] for r in h.org.records("SELECT Id FROM Account WHERE Is_Partner__c = true LIMIT 2")]
    customer = h.org.records("SELECT Id FROM Account WHERE Is_Partner__c = false LIMIT 1")[0]["Id"]
    first = portal.register_deal(partner=partners[0], end_customer=customer, name="Contested",
                                 close_date=dt.date(2026, 5, 1))
    portal.submit(first.registration)
    second = portal.register_deal(partner=partners[1], end_customer=customer, opportunity=first.opportunity,
                                  attribution="Influenced")   # a second Sourced party is refused up front
    assert second.channel_conflicts and "competing" in second.channel_conflicts[0].kind
