"""Currency conversion without a database: which rate applies on a day, half-up rounding to the
corporate currency's places, and single-currency orgs where every amount is already corporate."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given, strategies as st

from connector.schema_mirror.currency import Currency, CurrencyError, CurrencyTable, DatedRate, UnknownCurrency

D = Decimal
day = dt.date.fromisoformat

USD = Currency("USD", D(1), 2, is_corporate=True)
EUR = Currency("EUR", D("0.90"), 2)
JPY = Currency("JPY", D("150"), 0)
EUR_PERIODS = [DatedRate("EUR", D("0.95"), day("2025-01-01"), day("2025-04-01")),
               DatedRate("EUR", D("0.92"), day("2025-04-01"), None)]


def test_the_period_holding_the_day_gives_the_rate():
    rates = CurrencyTable([USD, EUR], EUR_PERIODS)
    assert rates.rate("EUR", day("2025-01-01")) == D("0.95")   # StartDate is inclusive
    assert rates.rate("EUR", day("2025-03-31")) == D("0.95")
    assert rates.rate("EUR", day("2025-04-01")) == D("0.92")   # NextStartDate is exclusive
    assert rates.rate("EUR", day("2099-12-31")) == D("0.92")   # the last period is open-ended
    assert rates.rate("EUR", day("2024-12-31")) == D("0.90")   # before every period: CurrencyType
    assert rates.rate("EUR", None) == D("0.90")                # no date: CurrencyType


def test_amounts_are_divided_by_the_rate_and_rounded_half_up():
    rates = CurrencyTable([USD, EUR, Currency("AUD", D(2), 2)], EUR_PERIODS)
    # 1000 EUR in the period holding 2025-05-10 (0.92): 1000 / 0.92 = 1086.9565... -> 1086.96 USD
    assert rates.convert(D("1000"), "EUR", day("2025-05-10")) == D("1086.96")
    # 24.69 AUD / 2 = 12.345: half up gives 12.35 where bankers' rounding would give 12.34
    assert rates.convert(D("24.69"), "AUD") == D("12.35")
    assert rates.convert(D("-24.69"), "AUD") == D("-12.35")    # halves round away from zero
    assert rates.convert(D("10.005"), "USD") == D("10.01")
    assert rates.convert(None, "EUR") is None
    assert rates.convert(D("5"), None) == D("5.00")             # no currency code: taken as corporate


def test_a_corporate_currency_without_decimals_rounds_to_units():
    rates = CurrencyTable([Currency("JPY", D(1), 0, is_corporate=True), Currency("USD", D("0.0066"), 2)])
    # 10 USD / 0.0066 = 1515.1515... -> 1515 JPY
    assert rates.convert(D("10"), "USD") == D("1515")
    assert rates.corporate.iso_code == "JPY"


def test_a_single_currency_org_is_the_identity():
    rates = CurrencyTable()
    assert rates.corporate is None and not rates.is_multi_currency
    assert rates.convert(D("1234.5678"), "EUR", day("2025-01-01")) == D("1234.5678")
    assert rates.rate("anything") == D(1)


def test_bad_currency_tables_are_reported():
    with pytest.raises(UnknownCurrency, match="'CHF'.*known codes: EUR, USD"):
        CurrencyTable([USD, EUR]).convert(D(1), "CHF")
    with pytest.raises(CurrencyError, match="0 corporate"):
        CurrencyTable([EUR])
    with pytest.raises(CurrencyError, match="2 corporate"):
        CurrencyTable([USD, Currency("GBP", D(1), 2, is_corporate=True)])


@st.composite
def _periods(draw):
    """Contiguous dated periods as Salesforce keeps them (NextStartDate = the next StartDate)."""
    starts = sorted(draw(st.sets(st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)), min_size=1, max_size=6)))
    rates = draw(st.lists(st.decimals("0.01", "500", places=6), min_size=len(starts), max_size=len(starts)))
    return [DatedRate("EUR", rate, start, starts[i + 1] if i + 1 < len(starts) else None)
            for i, (start, rate) in enumerate(zip(starts, rates))]


@given(periods=_periods(), on=st.dates(dt.date(2019, 1, 1), dt.date(2031, 1, 1)),
       amount=st.decimals("-1000000000", "1000000000", places=2))
def test_conversion_uses_the_latest_period_started_by_the_day(periods, on, amount):
    rates = CurrencyTable([USD, EUR], periods)
    started = [p for p in periods if p.start_date <= on]
    rate = started[-1].conversion_rate if started else EUR.conversion_rate
    assert rates.rate("EUR", on) == rate
    assert rates.convert(amount, "EUR", on) == (amount / rate).quantize(D("0.01"), rounding=ROUND_HALF_UP)
