"""Payout reconciliation on both databases against the emulator: deals are created in the org,
synced, reconciled against the payout files in tests/data/marketplace, and the status and net
received amount travel back to Salesforce with the next sync. Dates are fixed: payouts of
March 2025, judged as of 2025-06-01; EUR deals closing in H1 2025 convert at the demo org's
dated rate 0.963 EUR per USD."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from connector.marketplace import FeedError, PayoutLedger, Rules, parse_agreements, parse_feed
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture

DATA = __import__("pathlib").Path(__file__).parents[2] / "data" / "marketplace"
AS_OF = dt.date(2025, 6, 1)
RULES = Rules(today=AS_OF)


def aws_deal(org, name, amount, *, currency="USD", close="2025-02-14", market="AWS Marketplace", **fields):
    values = {"Name": name, "StageName": "Closed Won", "CloseDate": close, "Amount": amount,
              "CurrencyIsoCode": currency, "Cloud_Marketplace__c": market,
              "Marketplace_Offer_Id__c": fields.pop("offer", f"offer-{name.replace(' ', '-')}")}
    values.update(fields)
    return org.create("Opportunity", values)


@pytest.fixture
def deals(h):  # noqa: F811
    org = h.org
    ids = {
        "matched": aws_deal(org, "Recon matched", 100000, Marketplace_Agreement_Id__c="agmt-MATCHED"),
        "short": aws_deal(org, "Recon short", 50000, Marketplace_Agreement_Id__c="agmt-SHORT"),
        "refund": aws_deal(org, "Recon refund", 20000, Marketplace_Agreement_Id__c="agmt-REFUND"),
        "eur": aws_deal(org, "Recon EUR", 96300, currency="EUR", Marketplace_Agreement_Id__c="agmt-EUR"),
        "offer": aws_deal(org, "Recon via offer", 10000, offer="offer-VIAOFFER"),
        "fallback": aws_deal(org, "Recon fallback", 30000, Customer_Cloud_Account_Id__c="100000000006",
                             Marketplace_Product_Id__c="prod-fallback"),
        "twin1": aws_deal(org, "Recon twin 1", 5000, Customer_Cloud_Account_Id__c="100000000007",
                          Marketplace_Product_Id__c="prod-twice"),
        "twin2": aws_deal(org, "Recon twin 2", 5000, Customer_Cloud_Account_Id__c="100000000007",
                          Marketplace_Product_Id__c="prod-twice"),
        "unpaid": aws_deal(org, "Recon unpaid", 8000, close="2025-02-01",
                           Marketplace_Agreement_Id__c="agmt-NEVERPAID"),
        "recent": aws_deal(org, "Recon recent", 8000, close="2025-05-20",
                           Marketplace_Agreement_Id__c="agmt-RECENT"),
    }
    h.sync()
    return ids


def import_aws(h, *, dry_run=False, rules=RULES):  # noqa: F811
    return PayoutLedger(h.mirror).import_feed(parse_feed(DATA / "aws_billing_events.csv"),
                                              parse_agreements(DATA / "agreements.csv"),
                                              agreements_file="agreements.csv", rules=rules, dry_run=dry_run)


def in_org(h, sfid):  # noqa: F811
    record = h.org.records(f"SELECT Reconciliation_Status__c, Net_Received_Amount__c FROM Opportunity "
                           f"WHERE Id = '{sfid}'")[0]
    return {k: record.get(k) for k in ("Reconciliation_Status__c", "Net_Received_Amount__c")}


def outcome(result, sfid):
    return next(o for o in result.reconciliation.outcomes if o.deal is not None and o.deal.sfid == sfid)


def test_each_deal_gets_its_outcome_and_salesforce_sees_status_and_net(h, deals):  # noqa: F811
    result = import_aws(h)
    assert (result.lines, result.imported, result.already_imported, result.agreements_added) == (37, 37, 0, 1)

    matched = outcome(result, deals["matched"])
    assert (matched.status, matched.matched_by, matched.gross, matched.fee, matched.net) == (
        "matched", "agreement", Decimal("100000.00"), Decimal("-3000.00"), Decimal("97000.00")), "taxes never count"
    short = outcome(result, deals["short"])
    assert (short.status, short.difference, short.net) == ("amount_mismatch", Decimal("-5000.00"),
                                                           Decimal("43650.00"))
    assert outcome(result, deals["offer"]).matched_by == "offer"
    assert (outcome(result, deals["fallback"]).matched_by, outcome(result, deals["fallback"]).status) == (
        "account+product", "matched")
    assert outcome(result, deals["unpaid"]).status == "missing_payout"
    assert outcome(result, deals["recent"]).status == "awaiting_payout"
    unclaimed = {o.subject: o for o in result.reconciliation.outcomes if o.deal is None}
    orphan = unclaimed["aws:agreement:agmt-ORPHAN"]
    assert (orphan.status, orphan.gross, orphan.net, orphan.currency) == ("payout_without_deal", Decimal("7000.00"),
                                                                          Decimal("6790.00"), "USD")
    ambiguous = unclaimed["aws:agreement:agmt-AMBIG"]
    assert ambiguous.status == "ambiguous"
    assert deals["twin1"] in ambiguous.detail and deals["twin2"] in ambiguous.detail
    assert not any(o.subject.startswith("aws:line:") for o in unclaimed.values()), "a disbursement is no payout"

    report = h.sync()
    assert report.objects["Opportunity"].updated_remote >= 7
    assert in_org(h, deals["matched"]) == {"Reconciliation_Status__c": "Matched", "Net_Received_Amount__c": 97000}
    assert in_org(h, deals["short"]) == {"Reconciliation_Status__c": "Amount Mismatch",
                                         "Net_Received_Amount__c": 43650}
    assert in_org(h, deals["unpaid"])["Reconciliation_Status__c"] == "Missing Payout"
    assert in_org(h, deals["recent"])["Reconciliation_Status__c"] is None, "still within the 45 days"
    assert in_org(h, deals["twin1"])["Reconciliation_Status__c"] == "Missing Payout", "an ambiguous payout credits " \
                                                                                        "no deal"


def test_a_refund_lowers_the_net_and_shows_as_a_mismatch_of_its_amount(h, deals):  # noqa: F811
    refund = outcome(import_aws(h), deals["refund"])
    # 20,000 billed, 5,000 refunded; the listing fee of 600 is refunded by 150.
    assert (refund.gross, refund.refunds, refund.fee, refund.net) == (
        Decimal("20000.00"), Decimal("-5000.00"), Decimal("-450.00"), Decimal("14550.00"))
    assert (refund.status, refund.difference) == ("amount_mismatch", Decimal("-5000.00"))
    h.sync()
    assert in_org(h, deals["refund"]) == {"Reconciliation_Status__c": "Amount Mismatch",
                                          "Net_Received_Amount__c": 14550}


def test_a_usd_payout_on_an_eur_deal_is_compared_and_written_in_euros(h, deals):  # noqa: F811
    eur = outcome(import_aws(h), deals["eur"])
    # 100,000 USD x 0.963 = 96,300 EUR, the deal's amount; the 3,000 USD fee is 2,889 EUR.
    assert (eur.currency, eur.payout_currencies, eur.gross, eur.fee) == ("EUR", "USD", Decimal("96300.00"),
                                                                         Decimal("-2889.00"))
    assert (eur.status, eur.difference, eur.net) == ("matched", Decimal("0.00"), Decimal("93411.00"))
    h.sync()
    assert in_org(h, deals["eur"]) == {"Reconciliation_Status__c": "Matched", "Net_Received_Amount__c": 93411}


def test_importing_the_same_file_again_changes_and_pushes_nothing(h, deals, tmp_path):  # noqa: F811
    import_aws(h)
    h.sync()
    copy = tmp_path / "same_events_again.csv"
    shutil.copy(DATA / "aws_billing_events.csv", copy)
    again = PayoutLedger(h.mirror).import_feed(parse_feed(copy), rules=RULES)
    assert (again.imported, again.already_imported, again.reconciliation.deals_updated) == (0, 37, [])
    report = h.sync()
    assert report.objects["Opportunity"].updated_remote == 0
    assert PayoutLedger(h.mirror).reconcile(rules=RULES).deals_updated == []


def test_a_payout_arriving_later_turns_a_missing_payout_into_matched(h, deals, tmp_path):  # noqa: F811
    import_aws(h)
    h.sync()
    assert in_org(h, deals["unpaid"])["Reconciliation_Status__c"] == "Missing Payout"
    late = tmp_path / "late.csv"
    rows = (DATA / "aws_billing_events.csv").read_text().splitlines()
    header, first = rows[0], rows[1].split(",")
    first[0], first[5], first[14] = "be-late-1", "agmt-NEVERPAID", "8000.00"
    late.write_text(header + "\n" + ",".join(first) + "\n")
    result = PayoutLedger(h.mirror).import_feed(parse_feed(late), rules=RULES)
    assert outcome(result, deals["unpaid"]).status == "matched"
    h.sync()
    # invoiced, not disbursed yet: nothing has reached the bank, so nothing is received (issue 14)
    assert in_org(h, deals["unpaid"]) == {"Reconciliation_Status__c": "Matched", "Net_Received_Amount__c": 0}


def test_missing_payout_days_come_from_the_rules(h, deals):  # noqa: F811
    result = import_aws(h, rules=Rules(today=AS_OF, missing_payout_days=200))
    assert outcome(result, deals["unpaid"]).status == "awaiting_payout"


def test_azure_earnings_in_gbp_match_by_tenant_and_product_and_a_full_refund_is_a_mismatch(h):  # noqa: F811
    contoso = aws_deal(h.org, "Contoso SaaS", 12000, currency="GBP", market="Azure Marketplace",
                       Customer_Cloud_Account_Id__c="7c9e6679-7425-40de-944b-e07fc1f90ae7",
                       Marketplace_Product_Id__c="cosell-demo.cd-platform-saas")
    fabrikam = aws_deal(h.org, "Fabrikam SaaS", 2400, currency="GBP", market="Azure Marketplace",
                        Customer_Cloud_Account_Id__c="0f8fad5b-d9cb-469f-a165-70867728950e",
                        Marketplace_Product_Id__c="cosell-demo.cd-platform-saas")
    h.sync()
    result = PayoutLedger(h.mirror).import_feed(parse_feed(DATA / "azure_earnings.csv"), rules=RULES)
    paid, refunded = outcome(result, contoso), outcome(result, fabrikam)
    assert (paid.status, paid.gross, paid.fee, paid.net) == ("matched", Decimal("12000.00"), Decimal("-360.00"),
                                                             Decimal("11640.00"))
    assert (refunded.status, refunded.difference, refunded.net) == ("amount_mismatch", Decimal("-2400.00"),
                                                                    Decimal("0.00"))
    h.sync()
    assert in_org(h, contoso) == {"Reconciliation_Status__c": "Matched", "Net_Received_Amount__c": 11640}
    assert in_org(h, fabrikam) == {"Reconciliation_Status__c": "Amount Mismatch", "Net_Received_Amount__c": 0}


def _stored_lines(h):  # noqa: F811
    ledger = PayoutLedger(h.mirror)
    with h.database.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ledger.tables.lines)).scalar_one()


def test_a_refused_import_leaves_nothing_behind(h, deals, tmp_path):  # noqa: F811
    import_aws(h)
    h.sync()
    before = _stored_lines(h)
    changed = tmp_path / "changed.csv"
    rows = (DATA / "aws_billing_events.csv").read_text().splitlines()
    fresh = rows[1].split(",")
    fresh[0], fresh[5] = "be-new-1", "agmt-NEVERPAID"
    altered = rows[2].replace(",-3000.00,", ",-2000.00,")   # be-0002 again, with another amount
    changed.write_text("\n".join([rows[0], ",".join(fresh), altered]) + "\n")
    with pytest.raises(FeedError, match=r"changed.csv, line 3: billing_event_id 'be-0002' was imported before "
                                        r"\(from .*aws_billing_events.csv line 3\) with different values"):
        PayoutLedger(h.mirror).import_feed(parse_feed(changed), rules=RULES)
    assert _stored_lines(h) == before, "the new line of the refused file was not kept either"
    assert h.sync().objects["Opportunity"].updated_remote == 0
    assert in_org(h, deals["unpaid"])["Reconciliation_Status__c"] == "Missing Payout"


def test_a_dry_run_reports_but_writes_nothing(h, deals):  # noqa: F811
    result = import_aws(h, dry_run=True)
    assert result.dry_run and outcome(result, deals["matched"]).status == "matched"
    assert result.reconciliation.deals_updated
    assert PayoutLedger(h.mirror).outcomes() == []
    assert _stored_lines(h) == 0
    assert h.sync().objects["Opportunity"].updated_remote == 0


def test_the_stored_exceptions_are_what_the_report_lists(h, deals):  # noqa: F811
    from connector.marketplace import EXCEPTIONS, render_outcomes

    import_aws(h)
    rows = PayoutLedger(h.mirror).outcomes(EXCEPTIONS)
    mine = {r["deal_name"] or r["subject"]: r for r in rows
            if (r["deal_name"] or "").startswith("Recon") or r["deal_uuid"] is None}
    assert mine["Recon short"]["status"] == "amount_mismatch" and mine["Recon short"]["difference"] == Decimal(
        "-5000.00")
    assert mine["aws:agreement:agmt-ORPHAN"]["status"] == "payout_without_deal"
    assert "Recon matched" not in mine and "Recon recent" not in mine
    assert '"difference": "-5000.00"' in render_outcomes([mine["Recon short"]], "json")


def test_a_payout_in_a_currency_the_org_lacks_is_refused_with_its_line(h, deals, tmp_path):  # noqa: F811
    rows = (DATA / "aws_billing_events.csv").read_text().splitlines()
    chf = tmp_path / "chf.csv"
    chf.write_text("\n".join([rows[0], rows[1], rows[2].replace(",USD,", ",CHF,")]) + "\n")
    with pytest.raises(FeedError, match=r"chf.csv, line 3: currency CHF is not one of the org's currencies "
                                        r"\(EUR, GBP, INR, JPY, USD\)"):
        PayoutLedger(h.mirror).import_feed(parse_feed(chf), rules=RULES)
    assert PayoutLedger(h.mirror).outcomes() == [] and _stored_lines(h) == 0


def test_a_matched_deal_whose_payout_becomes_ambiguous_no_longer_says_matched(h, deals):  # noqa: F811
    """Tried: a deal Matched by its agreement, then a clone of it (same agreement) created in the org, all
    within the payout window. The payout is now ambiguous; the first deal must not keep "Matched" and
    its net in Salesforce (nothing can claim the money), and nothing is guessed for the clone."""
    early = Rules(today=dt.date(2025, 3, 1))
    first = import_aws(h, rules=early)
    assert outcome(first, deals["matched"]).status == "matched"
    h.sync()
    assert in_org(h, deals["matched"])["Reconciliation_Status__c"] == "Matched"
    h.tick()
    clone = aws_deal(h.org, "Recon matched (clone)", 100000, Marketplace_Agreement_Id__c="agmt-MATCHED")
    h.sync()
    again = PayoutLedger(h.mirror).reconcile(rules=early)
    assert next(o for o in again.outcomes if o.deal and o.deal.sfid == deals["matched"]).status == "awaiting_payout"
    assert any(o.status == "ambiguous" and clone in o.detail for o in again.outcomes)
    h.sync()
    assert in_org(h, deals["matched"]) == {"Reconciliation_Status__c": None, "Net_Received_Amount__c": None}
    assert in_org(h, clone)["Reconciliation_Status__c"] is None
