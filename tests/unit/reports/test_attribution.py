"""Partner attribution checked against amounts worked out by hand, across two currencies
and two rate periods (USD corporate; EUR at 0.90 until 2025-04-01, then 0.80; GBP 0.75)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from connector.cosell.attribution import Credit, Deal, attribute, period_of
from connector.schema_mirror.currency import Currency, CurrencyTable, DatedRate

D = Decimal
RATES = CurrencyTable(
    [Currency("USD", D("1"), 2, is_corporate=True), Currency("EUR", D("0.95"), 2), Currency("GBP", D("0.75"), 2)],
    [DatedRate("EUR", D("0.90"), dt.date(2025, 1, 1), dt.date(2025, 4, 1)),
     DatedRate("EUR", D("0.80"), dt.date(2025, 4, 1), None)])


def _report(deals, credits, period="quarter"):
    return {(r.partner_name, r.period, r.attribution): r
            for r in attribute(deals, credits, RATES.convert, period=period)}


def test_sourced_influenced_and_delivered_credit_with_splits_in_the_corporate_currency():
    deals = [
        Deal("o1", "EUR deal in Q1", D("9000.00"), "EUR", dt.date(2025, 2, 10), True, True),    # won, rate 0.90
        Deal("o2", "EUR deal in Q2", D("8000.00"), "EUR", dt.date(2025, 5, 20), False, False),  # open, rate 0.80
        Deal("o3", "GBP deal in Q2", D("1500.00"), "GBP", dt.date(2025, 6, 30), True, True),    # won, static 0.75
        Deal("o4", "lost deal", D("5000.00"), "USD", dt.date(2025, 6, 1), True, False),         # lost: no credit
    ]
    credits = [
        Credit("o1", "aws", "AWS", "Sourced", "Revenue", D("60")),
        Credit("o1", "acn", "Accenture", "Delivered", "Revenue", D("40")),
        Credit("o2", "aws", "AWS", "Influenced", "Influence", D("25")),
        Credit("o3", "acn", "Accenture", "Sourced", "Revenue", D("100")),
        Credit("o4", "aws", "AWS", "Sourced", "Revenue", D("100")),
    ]
    report = _report(deals, credits)
    # o1: 9000 EUR / 0.90 = 10000.00 USD, won in 2025-Q1.
    aws_q1 = report[("AWS", "2025-Q1", "Sourced")]
    assert (aws_q1.closed_won, aws_q1.split_closed_won, aws_q1.pipeline) == (D("10000.00"), D("6000.00"), 0)
    assert report[("Accenture", "2025-Q1", "Delivered")].split_closed_won == D("4000.00")
    # o2: 8000 EUR / 0.80 = 10000.00 USD, open in 2025-Q2, influence 25% = 2500.00.
    aws_q2 = report[("AWS", "2025-Q2", "Influenced")]
    assert (aws_q2.pipeline, aws_q2.split_pipeline, aws_q2.closed_won) == (D("10000.00"), D("2500.00"), 0)
    # o3: 1500 GBP / 0.75 = 2000.00 USD.
    assert report[("Accenture", "2025-Q2", "Sourced")].closed_won == D("2000.00")
    # o4 was lost: it earns nobody credit.
    assert ("AWS", "2025-Q2", "Sourced") not in report


def test_periods():
    day = dt.date(2025, 11, 3)
    assert (period_of(day, "month"), period_of(day, "quarter"), period_of(day, "year")) == ("2025-11", "2025-Q4", "2025")
