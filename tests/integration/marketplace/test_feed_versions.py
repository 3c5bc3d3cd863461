"""The AWS feed's rules across imports, on both databases (issue 14): a later version of an event imported
before replaces it, a deletion exported later drops it, and what was disbursed (not what was invoiced)
reaches Salesforce as Net_Received_Amount__c, with Partly Paid for instalments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from connector.marketplace import PayoutLedger, Rules, parse_feed
from tests.integration.marketplace.test_reconciliation import aws_deal, in_org
from tests.integration.sync.test_sync import Harness, h  # noqa: F401 - the fixture
from tests.unit.marketplace.test_feed_rules import BASE, inv, paid

RULES = Rules(today=dt.date(2025, 6, 1))


def _import(h, tmp_path, name, *rows):
    import csv
    import io

    from connector.marketplace.feeds import AWS_COLUMNS
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*AWS_COLUMNS, "update_date", "delete_date"])
    writer.writeheader()
    for r in rows:
        writer.writerow(BASE | {"agreement_id": "agmt-V", "invoice_date": "2025-03-01"} | r)
    path = tmp_path / name
    path.write_text(out.getvalue())
    result = PayoutLedger(h.mirror).import_feed(parse_feed(path), rules=RULES)
    return next(o for o in result.reconciliation.outcomes if o.deal and o.deal.agreement_id == "agmt-V")


def test_versions_deletions_and_disbursements_across_imports(h, tmp_path):  # noqa: F811
    deal = aws_deal(h.org, "Versioned deal", 100000, Marketplace_Agreement_Id__c="agmt-V")
    h.sync()
    first = _import(h, tmp_path, "day1.csv", inv("be-1", "90000.00", update_date="2025-03-01T00:00:00Z"),
                    inv("be-2", "10000.00"), inv("be-3", "5000.00", "BALANCE_ADJUSTMENT"))
    assert first.gross == Decimal("100000.00") and first.adjustments == Decimal("5000.00")
    # the next day's export: be-1 in a later version, be-3 withdrawn, the first invoice line disbursed
    later = _import(h, tmp_path, "day2.csv", inv("be-1", "50000.00", update_date="2025-03-02T00:00:00Z"),
                    inv("be-3", "5000.00", "BALANCE_ADJUSTMENT", delete_date="2025-03-02", update_date="2025-03-02"),
                    inv("be-4", "40000.00"), paid("be-5", "be-1", "-50000.00"))
    assert (later.gross, later.adjustments) == (Decimal("100000.00"), Decimal("0.00")), "latest versions stand"
    assert (later.status, later.received, later.outstanding) == ("partly_paid", Decimal("50000.00"),
                                                                 Decimal("50000.00"))
    h.sync()
    assert in_org(h, deal) == {"Reconciliation_Status__c": "Partly Paid", "Net_Received_Amount__c": 50000}
