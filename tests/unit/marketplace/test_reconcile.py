"""Matching and judging payouts, pure: which deal a line belongs to, when a difference is a
mismatch, when an unpaid deal is overdue. Rates here are units per corporate (USD) unit."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from connector.marketplace.feeds import PayoutLine
from connector.marketplace.reconcile import Deal, Rules, Tolerance, reconcile

RATES = {"USD": Decimal(1), "EUR": Decimal("0.963"), "JPY": Decimal("157.2")}
PLACES = {"USD": 2, "EUR": 2, "JPY": 0}
TODAY = dt.date(2025, 6, 1)


def deal(name, amount, currency="USD", **kw) -> Deal:
    values = dict(uuid=f"u-{name}", sfid=f"006{name}", name=name, amount=Decimal(amount), currency=currency,
                  close_date=dt.date(2025, 2, 14), is_won=True, is_closed=True, marketplace="AWS Marketplace")
    values.update(kw)
    return Deal(**values)


def line(key, amount, kind="gross", currency="USD", **kw) -> PayoutLine:
    values = dict(source="aws", key=key, line_no=int(key[1:]) + 1, kind=kind, amount=Decimal(amount),
                  currency=currency, event_date=dt.date(2025, 3, 1), action="INVOICED")
    values.update(kw)
    return PayoutLine(**values)


def run(deals, lines, offers=None, **rules):
    outcomes = reconcile(deals, lines, offers or {}, lambda iso, on: RATES[iso or "USD"], places=PLACES,
                         corporate="USD", rules=Rules(today=TODAY, **rules))
    return {o.subject: o for o in outcomes}


def test_a_converted_payout_within_rounding_matches_and_a_real_shortfall_does_not():
    eur = deal("EUR", "1000.00", "EUR", agreement_id="a1")
    # 1038.42 USD x 0.963 = 999.99846 EUR: conversion rounding, not a shortfall.
    assert run([eur], [line("l1", "1038.42", agreement_id="a1")])["u-EUR"].status == "matched"
    usd = deal("USD", "1000.00", agreement_id="a1")
    short = run([usd], [line("l1", "998.99", agreement_id="a1")], )["u-USD"]
    assert (short.status, short.difference) == ("amount_mismatch", Decimal("-1.01"))
    assert run([usd], [line("l1", "999.00", agreement_id="a1")])["u-USD"].status == "matched"


def test_the_fx_allowance_applies_only_to_converted_payouts():
    strict = Tolerance(absolute=Decimal("0.01"), fx_percent=Decimal("1"))
    eur = deal("EUR", "1000.00", "EUR", agreement_id="a1")
    # 1048 USD = 1009.22 EUR: 0.92% over, inside the 1% FX allowance.
    assert run([eur], [line("l1", "1048.00", agreement_id="a1")], tolerance=strict)["u-EUR"].status == "matched"
    same = deal("EUR", "1000.00", "EUR", agreement_id="a1")
    paid = run([same], [line("l1", "1009.22", currency="EUR", agreement_id="a1")], tolerance=strict)["u-EUR"]
    assert (paid.status, paid.difference) == ("amount_mismatch", Decimal("9.22"))


def test_net_is_gross_plus_fee_refunds_and_credits_in_the_deals_currency():
    jpy = deal("JPY", "1572000", "JPY", agreement_id="a1")
    outcome = run([jpy], [line("l1", "10000.00", agreement_id="a1"),
                          line("l2", "-300.00", kind="fee", agreement_id="a1"),
                          line("l3", "-1000.00", kind="refund", agreement_id="a1"),
                          line("l4", "30.00", kind="fee", agreement_id="a1")])["u-JPY"]
    assert (outcome.gross, outcome.fee, outcome.refunds) == (Decimal(1572000), Decimal(-42444), Decimal(-157200))
    assert outcome.net == Decimal(1372356) and outcome.difference == Decimal(-157200)
    assert outcome.status == "amount_mismatch" and "refunds -157200" in outcome.detail


def test_two_candidate_deals_are_never_guessed_and_lost_deals_are_no_fallback():
    a = deal("A", "500", customer_account="111", product_id="p")
    b = deal("B", "500", customer_account="111", product_id="p")
    lost = deal("L", "500", customer_account="222", product_id="p", is_won=False)
    outcomes = run([a, b, lost], [line("l1", "500", customer_account="111", product_id="p"),
                                  line("l2", "500", customer_account="222", product_id="p")])
    ambiguous = outcomes["aws:account:111:product:p"]
    assert ambiguous.status == "ambiguous" and "006A" in ambiguous.detail and "006B" in ambiguous.detail
    assert outcomes["aws:account:222:product:p"].status == "payout_without_deal"
    assert outcomes["u-A"].status == outcomes["u-B"].status == "missing_payout", "neither deal was credited"


def test_agreement_then_offer_then_account_and_product():
    by_agreement = deal("AG", "100", agreement_id="a1", customer_account="9", product_id="p")
    by_offer = deal("OF", "100", offer_id="o2")
    by_account = deal("AC", "100", customer_account="9", product_id="q")
    outcomes = run([by_agreement, by_offer, by_account],
                   [line("l1", "100", agreement_id="a1", customer_account="9", product_id="q"),
                    line("l2", "100", agreement_id="a2"),
                    line("l3", "100", agreement_id="a3", customer_account="9", product_id="q")], {"a2": "o2"})
    assert [outcomes[u].matched_by for u in ("u-AG", "u-OF", "u-AC")] == ["agreement", "offer", "account+product"]
    assert all(outcomes[u].status == "matched" for u in ("u-AG", "u-OF", "u-AC"))


def test_an_unpaid_won_deal_is_missing_only_after_the_configured_days():
    on_time = deal("T", "100", close_date=TODAY - dt.timedelta(days=45))
    late = deal("L", "100", close_date=TODAY - dt.timedelta(days=46))
    direct = deal("D", "100", close_date=TODAY - dt.timedelta(days=400), marketplace="None")
    outcomes = run([on_time, late, direct], [])
    assert outcomes["u-T"].status == "awaiting_payout" and outcomes["u-L"].status == "missing_payout"
    assert "u-D" not in outcomes, "a deal not sold through AWS or Azure Marketplace expects no payout"
    assert run([late], [], missing_payout_days=60)["u-L"].status == "awaiting_payout"


def test_a_single_currency_org_never_adds_up_two_currencies():
    usd = deal("S", "1000.00", None, agreement_id="a1")
    outcomes = reconcile([usd], [line("l1", "500.00", agreement_id="a1"),
                                 line("l2", "500.00", currency="EUR", agreement_id="a1")], {},
                         lambda iso, on: Decimal(1), places=PLACES, corporate=None, rules=Rules(today=TODAY))
    assert outcomes[0].status == "amount_mismatch" and "no currency rates" in outcomes[0].detail
