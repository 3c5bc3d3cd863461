"""The attribution report from mirrored, synced data on both databases, checked by hand:
a won EUR deal closing 2025-02-14 converts at the demo org's dated EUR rate for
2025-01-01..2025-07-01 (0.963), a GBP deal closing 2025-08-20 at its 2025-07-01 rate."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from connector.reports import attribution_report, render
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture


def test_attribution_report_in_the_corporate_currency_at_dated_rates(h):  # noqa: F811
    gbp_rate = next(r.rate for r in h.org.org.features.multi_currency.dated_rates
                    if r.iso_code == "GBP" and r.start_date == "2025-07-01")
    partner = h.org.create("Account", {"Name": "Attribution Partner Ltd", "Is_Partner__c": True})
    won = h.org.create("Opportunity", {"Name": "EUR win", "StageName": "Closed Won", "CloseDate": "2025-02-14",
                                       "Amount": 96300, "CurrencyIsoCode": "EUR",
                                       "Marketplace_Offer_Id__c": "offer-1"})
    open_ = h.org.create("Opportunity", {"Name": "GBP open", "StageName": "Qualification",
                                         "CloseDate": "2025-08-20", "Amount": 50000, "CurrencyIsoCode": "GBP"})
    h.org.create("Co_Sell_Participant__c", {"Opportunity__c": won, "Partner_Account__c": partner,
                                            "Role__c": "System Integrator", "Attribution__c": "Sourced",
                                            "Split_Type__c": "Revenue", "Split_Percent__c": 70})
    h.org.create("Co_Sell_Participant__c", {"Opportunity__c": open_, "Partner_Account__c": partner,
                                            "Role__c": "Referral Partner", "Attribution__c": "Influenced",
                                            "Split_Type__c": "Influence", "Split_Percent__c": 15})
    h.sync()
    rows = {(r.period, r.attribution): r for r in attribution_report(h.mirror, period="quarter")
            if r.partner_name == "Attribution Partner Ltd"}
    # 96,300 EUR / 0.963 = 100,000.00 USD; 70% of it is the revenue split.
    sourced = rows[("2025-Q1", "Sourced")]
    assert (sourced.closed_won, sourced.split_closed_won, sourced.deals) == (Decimal("100000.00"),
                                                                            Decimal("70000.00"), 1)
    expected = (Decimal(50000) / Decimal(str(gbp_rate))).quantize(Decimal("0.01"), ROUND_HALF_UP)
    influenced = rows[("2025-Q3", "Influenced")]
    assert influenced.pipeline == expected
    assert influenced.split_pipeline == (expected * Decimal("0.15")).quantize(Decimal("0.01"), ROUND_HALF_UP)
    assert "Attribution Partner Ltd" in render(list(rows.values()), "csv")
