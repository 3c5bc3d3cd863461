"""The AWS billing-event feed by its own rules (issue 14): the latest version of an event stands, a deleted
event drops out, the net received is what was disbursed (invoiced-but-not-disbursed is outstanding),
instalments partly paid are their own status, and a disbursement failure is shown, not refused."""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

from connector.marketplace.feeds import AWS_COLUMNS, parse_feed
from connector.marketplace.reconcile import Deal, Rules, reconcile

BASE = dict.fromkeys(AWS_COLUMNS, "") | {
    "end_user_account_id": "100000000001", "product_id": "prod-core", "agreement_id": "agmt-1",
    "invoice_date": "2026-09-01", "currency": "USD", "balance_impacting": "1"}


def feed(tmp_path: Path, *rows: dict[str, str], extra=("update_date", "delete_date")):
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[*AWS_COLUMNS, *extra])
    writer.writeheader()
    for r in rows:
        writer.writerow(BASE | r)
    path = tmp_path / "billing.csv"
    path.write_text(out.getvalue())
    return parse_feed(path)


def inv(key, amount, kind="SELLER_REV_SHARE", **kw):
    return {"billing_event_id": key, "amount": amount, "action": "INVOICED", "transaction_type": kind, **kw}


def paid(key, parent, amount, kind="SELLER_REV_SHARE", disbursement="be-pay-1"):
    return {"billing_event_id": key, "amount": amount, "action": "DISBURSED", "transaction_type": kind,
            "parent_billing_event_id": parent, "disbursement_billing_event_id": disbursement}


def judge(lines, amount="100000.00"):
    deal = Deal("u-1", "006A", "Deal", Decimal(amount), "USD", dt.date(2026, 8, 15), True, True,
                "AWS Marketplace", agreement_id="agmt-1")
    [outcome] = reconcile([deal], lines, {}, lambda iso, on: Decimal(1), places={"USD": 2}, corporate="USD",
                          rules=Rules(today=dt.date(2026, 12, 2)))
    return outcome


def test_two_instalments_one_disbursed_receive_what_reached_the_bank(tmp_path):
    lines = feed(tmp_path, inv("be-1", "50000.00"), inv("be-2", "-1500.00", "AWS_REV_SHARE"),
                 inv("be-3", "50000.00", invoice_date="2026-10-01"),
                 inv("be-4", "-1500.00", "AWS_REV_SHARE", invoice_date="2026-10-01"),
                 paid("be-5", "be-1", "-50000.00"), paid("be-6", "be-2", "1500.00", "AWS_REV_SHARE")).lines
    outcome = judge(lines)
    assert (outcome.net, outcome.received, outcome.outstanding) == (
        Decimal("97000.00"), Decimal("48500.00"), Decimal("48500.00")), "not twice what reached the bank"
    assert outcome.status == "partly_paid", "an instalment still to be paid is not a mismatch"
    assert "received 48500.00, outstanding 48500.00" in outcome.detail


def test_fully_disbursed_is_matched_with_nothing_outstanding(tmp_path):
    lines = feed(tmp_path, inv("be-1", "100000.00"), paid("be-2", "be-1", "-100000.00")).lines
    outcome = judge(lines)
    assert (outcome.status, outcome.received, outcome.outstanding) == ("matched", Decimal("100000.00"), 0)


def test_the_latest_version_of_an_event_stands(tmp_path):
    lines = feed(tmp_path, inv("be-1", "90000.00", update_date="2026-09-02T00:00:00Z"),
                 inv("be-1", "100000.00", update_date="2026-09-05T00:00:00Z"),
                 inv("be-1", "80000.00", update_date="2026-09-03")).lines
    assert [(ln.key, ln.amount) for ln in lines] == [("be-1", Decimal("100000.00"))]
    assert judge(lines).status == "matched"


def test_the_same_version_twice_is_still_refused(tmp_path):
    import pytest

    from connector.marketplace.feeds import FeedError
    with pytest.raises(FeedError, match="line 3: duplicate billing_event_id 'be-1'"):
        feed(tmp_path, inv("be-1", "1.00", update_date="2026-09-02"), inv("be-1", "2.00", update_date="2026-09-02"))
    with pytest.raises(FeedError, match="line 2: update_date 'yesterday' is not an ISO date"):
        feed(tmp_path, inv("be-1", "1.00", update_date="yesterday"))


def test_a_soft_deleted_event_is_no_revenue(tmp_path):
    lines = feed(tmp_path, inv("be-1", "100000.00"), inv("be-2", "25000.00", delete_date="2026-09-10")).lines
    assert judge(lines).gross == Decimal("100000.00")


def test_a_disbursement_failure_is_read_and_shown_and_the_money_is_not_received(tmp_path):
    lines = feed(tmp_path, inv("be-1", "100000.00"), paid("be-2", "be-1", "-100000.00"),
                 {"billing_event_id": "be-pay-1", "amount": "-100000.00", "action": "DISBURSED",
                  "transaction_type": "DISBURSEMENT", "bank_trace_id": "trace-1"},
                 {"billing_event_id": "be-fail-1", "amount": "100000.00", "action": "INVOICED",
                  "transaction_type": "DISBURSEMENT", "parent_billing_event_id": "be-pay-1"}).lines
    outcome = judge(lines)
    assert outcome.received == 0 and outcome.outstanding == Decimal("100000.00")
    assert "disbursement be-pay-1 failed" in outcome.detail


def test_a_cppo_deal_matches_at_the_wholesale_price_when_the_agreement_gives_the_margin(tmp_path):
    lines = feed(tmp_path, inv("be-1", "85000.00"), paid("be-2", "be-1", "-85000.00")).lines
    deal = Deal("u-1", "006A", "Deal", Decimal("100000.00"), "USD", dt.date(2026, 8, 15), True, True,
                "AWS Marketplace", agreement_id="agmt-1")

    def run(margins):
        [o] = reconcile([deal], lines, {}, lambda iso, on: Decimal(1), places={"USD": 2}, corporate="USD",
                        rules=Rules(today=dt.date(2026, 12, 2)), margins=margins)
        return o
    assert run({}).status == "amount_mismatch", "without the margin the reseller's cut looks like a shortfall"
    cppo = run({"agmt-1": Decimal("15")})
    assert (cppo.status, cppo.expected, cppo.difference) == ("matched", Decimal("85000.00"), 0)
    assert "reseller margin 15%" in cppo.detail


def test_the_agreements_file_carries_the_reseller_margin(tmp_path):
    import pytest

    from connector.marketplace.feeds import FeedError, parse_agreements
    path = tmp_path / "agreements.csv"
    path.write_text("agreement_id,offer_id,reseller_margin_percent\nagmt-1,offer-1,15\nagmt-2,offer-2,\n")
    assert [(a.agreement_id, a.reseller_margin_percent) for a in parse_agreements(path)] == [
        ("agmt-1", Decimal("15")), ("agmt-2", None)]
    path.write_text("agreement_id,offer_id,reseller_margin_percent\nagmt-1,offer-1,150\n")
    with pytest.raises(FeedError, match="line 2: reseller_margin_percent '150' is not a percentage"):
        parse_agreements(path)
