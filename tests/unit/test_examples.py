"""The sample files in examples/ (the README's walkthrough) read as what they show: a two-sided overlap export
with one partner spelled four ways and ISO country codes, and an AWS feed with two instalments, one
disbursed, a re-exported version and a withdrawn line. Matched against the demo org in e2e, by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from connector.marketplace.feeds import parse_agreements, parse_feed
from connector.marketplace.reconcile import Deal, Rules, reconcile
from connector.overlaps.source import read_overlaps

EXAMPLES = Path(__file__).parents[2] / "examples"


def test_the_sample_overlap_export_is_two_sided():
    rows = read_overlaps(EXAMPLES / "overlaps.csv")
    assert {r.our_population for r in rows} == {"Customers"} and len({r.partner for r in rows}) == 4


def test_the_sample_feed_is_partly_paid_as_disbursed():
    import datetime as dt
    feed = parse_feed(EXAMPLES / "billing_events.csv")
    [pair] = parse_agreements(EXAMPLES / "agreements.csv")
    deal = Deal("u", "006Dm00000000B8IAI", "Alder Semiconductors B.V. - AI Assistant Pilot", Decimal("277950.00"),
                "EUR", dt.date(2026, 9, 30), True, True, "AWS Marketplace", agreement_id=pair.agreement_id)
    [o] = reconcile([deal], feed.lines, {pair.agreement_id: pair.offer_id}, lambda iso, on: Decimal(1),
                    places={"EUR": 2}, corporate="EUR", rules=Rules(today=dt.date(2026, 12, 2)))
    assert (o.status, o.net, o.received, o.outstanding) == ("partly_paid", Decimal("269611.50"),
                                                            Decimal("134805.75"), Decimal("134805.75"))
