"""Amounts in the corporate currency from mirrored CurrencyType and DatedConversionRate rows, on
SQLite and PostgreSQL: every expected value below is worked out by hand (amount / rate, rounded
half up to the corporate currency's 2 places), and the SQL view agrees with the Python API."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import Boolean, Date, MetaData, String, column, insert, inspect, select, table, update

from connector.schema_mirror.currency import (STATIC_RATES, CurrencyError, CurrencyTable, UnknownCurrency,
                                              corporate_amounts, create_corporate_view, drop_corporate_view)
from connector.schema_mirror.types import ExactDecimal
from tests.integration.schema_mirror.mirror_tables import CONTRACT, create_tables, mirrored_table

D = Decimal
day = dt.date.fromisoformat

CURRENCIES = [  # (isocode, rate, decimal places, active, corporate)
    ("USD", "1.0", 2, True, True),
    ("EUR", "0.90", 2, True, False),
    ("GBP", "0.80", 2, True, False),
    ("AUD", "2.0", 2, True, False),      # no dated rates at all
    ("JPY", "150.0", 0, False, False),   # inactive: records already in yen still convert
]
DATED = [  # (isocode, rate, start, next start)
    ("USD", "1.0", "2025-01-01", None),
    ("EUR", "0.95", "2025-01-01", "2025-04-01"),
    ("EUR", "0.92", "2025-04-01", None),
    ("GBP", "0.78", "2025-01-01", "2025-07-01"),
    ("GBP", "0.75", "2025-07-01", None),
]
OPPORTUNITY_COLUMNS = {**CONTRACT["Opportunity"], "net_received_amount__c": ExactDecimal(18, 2)}
OPPORTUNITIES = [  # (sfid, amount, net received, currency, close date, deleted)
    ("006000000000001AAA", "1000.00", "900.00", "EUR", "2025-05-10", False),
    ("006000000000002AAA", "1000.00", None, "EUR", "2025-02-15", False),
    ("006000000000003AAA", "920.00", None, "EUR", "2025-04-01", False),
    ("006000000000004AAA", "500.00", "499.99", "GBP", "2025-08-01", False),
    ("006000000000005AAA", "500.00", None, "GBP", "2025-06-30", False),
    ("006000000000006AAA", "1000.00", None, "EUR", "2024-12-31", False),
    ("006000000000007AAA", "250.50", "250.50", "USD", "2025-03-01", False),
    ("006000000000008AAA", None, None, "EUR", "2025-05-10", False),
    ("006000000000009AAA", "24.69", None, "AUD", "2025-05-10", False),
    ("006000000000010AAA", "30000", None, "JPY", "2025-05-10", False),
    ("006000000000011AAA", "999.00", None, "EUR", "2025-05-10", True),
    ("006000000000012AAA", "100.00", None, "EUR", None, False),
]
EXPECTED_OPPORTUNITY_AMOUNTS = {
    # EUR, CloseDate in the period from 2025-04-01 (rate 0.92): 1000 / 0.92 = 1086.9565... -> 1086.96
    "006000000000001AAA": D("1086.96"),
    # EUR, period 2025-01-01..2025-04-01 (0.95): 1000 / 0.95 = 1052.6315... -> 1052.63
    "006000000000002AAA": D("1052.63"),
    # EUR on the first day of the 0.92 period (StartDate is inclusive): 920 / 0.92 = 1000.00
    "006000000000003AAA": D("1000.00"),
    # GBP from 2025-07-01 (0.75): 500 / 0.75 = 666.666... -> 666.67
    "006000000000004AAA": D("666.67"),
    # GBP on the last day of the first period (NextStartDate is exclusive), 0.78: 500 / 0.78 = 641.0256... -> 641.03
    "006000000000005AAA": D("641.03"),
    # EUR before every dated period: the CurrencyType rate 0.90: 1000 / 0.9 = 1111.111... -> 1111.11
    "006000000000006AAA": D("1111.11"),
    # the corporate currency itself
    "006000000000007AAA": D("250.50"),
    # no amount
    "006000000000008AAA": None,
    # AUD has no dated rates: static 2.0: 24.69 / 2 = 12.345 -> half up 12.35 (half even would give 12.34)
    "006000000000009AAA": D("12.35"),
    # JPY, static 150: 30000 / 150 = 200.00
    "006000000000010AAA": D("200.00"),
    # 006000000000011AAA is deleted: absent
    # EUR without a CloseDate: static 0.90: 100 / 0.9 = 111.111... -> 111.11
    "006000000000012AAA": D("111.11"),
}
EXPECTED_NET_RECEIVED = {
    "006000000000001AAA": D("978.26"),   # 900 / 0.92 = 978.2608... -> 978.26
    "006000000000004AAA": D("666.65"),   # 499.99 / 0.75 = 666.6533... -> 666.65
    "006000000000007AAA": D("250.50"),
}
ACCOUNTS = [  # (sfid, annual revenue, currency, deleted)
    ("001000000000001AAA", "5000000", "EUR", False),
    ("001000000000002AAA", "1000000", "GBP", False),
    ("001000000000003AAA", "7000000", "EUR", True),
]
DEAL_COLUMNS = {"currencyisocode": String(3), "registered_amount__c": ExactDecimal(18, 2),
                "expiry_date__c": Date, "isdeleted": Boolean}


@pytest.fixture
def org_db(engine, schema):
    """A multi-currency org with advanced currency management, mirrored."""
    with engine.begin() as c:
        t = create_tables(c, ["CurrencyType", "DatedConversionRate", "Opportunity", "Account"], schema=schema,
                          overrides={"Opportunity": OPPORTUNITY_COLUMNS})
        t |= create_tables(c, ["Deal_Registration__c"], schema=schema,
                           overrides={"Deal_Registration__c": DEAL_COLUMNS})
        c.execute(insert(t["CurrencyType"]), [
            dict(sfid=f"01L00000000000{i}AAA", isocode=iso, conversionrate=D(rate), decimalplaces=places,
                 isactive=active, iscorporate=corporate)
            for i, (iso, rate, places, active, corporate) in enumerate(CURRENCIES)])
        c.execute(insert(t["DatedConversionRate"]), [
            dict(sfid=f"04w00000000000{i}AAA", isocode=iso, conversionrate=D(rate), startdate=day(start),
                 nextstartdate=day(nxt) if nxt else None)
            for i, (iso, rate, start, nxt) in enumerate(DATED)])
        c.execute(insert(t["Opportunity"]), [
            dict(sfid=sfid, name=f"Deal {sfid[-6:]}", amount=amount and D(amount),
                 net_received_amount__c=net and D(net), currencyisocode=iso, closedate=close and day(close),
                 isdeleted=deleted)
            for sfid, amount, net, iso, close, deleted in OPPORTUNITIES])
        c.execute(insert(t["Account"]), [
            dict(sfid=sfid, name="Acme", annualrevenue=D(revenue), currencyisocode=iso, isdeleted=deleted)
            for sfid, revenue, iso, deleted in ACCOUNTS])
        c.execute(insert(t["Deal_Registration__c"]), [
            dict(sfid="a01000000000001AAA", currencyisocode="EUR", registered_amount__c=D("1000.00"),
                 expiry_date__c=day("2025-02-01"), isdeleted=False)])
    return engine, schema


def _view_values(connection, view: str, schema, columns: list[str]) -> dict[str, dict[str, Decimal | None]]:
    v = table(view, column("sfid"), *(column(f"{c}_corporate") for c in columns), schema=schema)
    out = {}
    for row in connection.execute(select(v)):
        values = row._mapping
        # SQLite computes the view through REAL: compare after rounding to 2 places
        out[values["sfid"]] = {c: None if values[f"{c}_corporate"] is None
                               else Decimal(str(values[f"{c}_corporate"])).quantize(D("0.01"))
                               for c in columns}
    return out


def test_rates_are_read_once_with_the_corporate_currency(org_db):
    engine, schema = org_db
    with engine.connect() as c:
        rates = CurrencyTable.load(c, schema)
    assert rates.corporate.iso_code == "USD" and rates.corporate.decimal_places == 2
    assert rates.is_multi_currency
    assert rates.rate("EUR", day("2025-05-10")) == D("0.92")
    assert rates.rate("EUR", day("2025-03-31")) == D("0.95")
    assert rates.rate("EUR", day("2024-12-31")) == D("0.90")   # before every period: static
    assert rates.rate("EUR", None) == D("0.90")
    assert rates.rate("AUD", day("2025-05-10")) == D("2")
    assert rates.convert(D("1000"), "EUR", day("2025-05-10")) == D("1086.96")
    with pytest.raises(UnknownCurrency, match="known codes: AUD, EUR, GBP, JPY, USD"):
        rates.rate("CHF")


def test_opportunities_convert_at_the_dated_rate_of_their_close_date(org_db):
    engine, schema = org_db
    with engine.connect() as c:
        amounts = corporate_amounts(c, "Opportunity", ["Amount", "Net_Received_Amount__c"], schema=schema)
    assert {sfid: v["amount"] for sfid, v in amounts.items()} == EXPECTED_OPPORTUNITY_AMOUNTS
    for sfid, net in EXPECTED_NET_RECEIVED.items():
        assert amounts[sfid]["net_received_amount__c"] == net
    assert amounts["006000000000002AAA"]["net_received_amount__c"] is None
    assert all(isinstance(v, Decimal) for row in amounts.values() for v in row.values() if v is not None)


def test_other_objects_use_the_static_rate_unless_given_a_date_column(org_db):
    engine, schema = org_db
    with engine.connect() as c:
        accounts = corporate_amounts(c, "Account", ["annualrevenue"], schema=schema)
        deals_static = corporate_amounts(c, "Deal_Registration__c", ["registered_amount__c"], schema=schema)
        deals_dated = corporate_amounts(c, "Deal_Registration__c", ["registered_amount__c"], schema=schema,
                                        date_column="Expiry_Date__c")
        opps_static = corporate_amounts(c, "Opportunity", ["amount"], schema=schema, date_column=STATIC_RATES)
    # 5,000,000 EUR / 0.90 = 5,555,555.555... -> 5,555,555.56; 1,000,000 GBP / 0.80 = 1,250,000.00; deleted absent
    assert accounts == {"001000000000001AAA": {"annualrevenue": D("5555555.56")},
                        "001000000000002AAA": {"annualrevenue": D("1250000.00")}}
    # 1000 EUR: static 0.90 -> 1111.11; dated on 2025-02-01 (0.95) -> 1052.63
    assert deals_static == {"a01000000000001AAA": {"registered_amount__c": D("1111.11")}}
    assert deals_dated == {"a01000000000001AAA": {"registered_amount__c": D("1052.63")}}
    # 1000 EUR closing 2025-05-10 at the static 0.90 instead of the dated 0.92
    assert opps_static["006000000000001AAA"]["amount"] == D("1111.11")


def test_the_view_agrees_with_the_python_api(org_db):
    engine, schema = org_db
    columns = ["amount", "net_received_amount__c"]
    with engine.begin() as c:
        view = create_corporate_view(c, "Opportunity", columns, schema=schema)
        assert view == "opportunity_corporate"
        from_view = _view_values(c, view, schema, columns)
        from_python = corporate_amounts(c, "Opportunity", columns, schema=schema)
        view_columns = [col["name"] for col in inspect(c).get_columns(view, schema=schema)]
    assert from_view == from_python
    assert {sfid: v["amount"] for sfid, v in from_view.items()} == EXPECTED_OPPORTUNITY_AMOUNTS
    table_columns = ["_id", "sfid", *OPPORTUNITY_COLUMNS]
    assert view_columns == table_columns + ["amount_corporate", "net_received_amount__c_corporate"]


def test_views_for_static_and_explicitly_dated_objects(org_db):
    engine, schema = org_db
    with engine.begin() as c:
        account_view = create_corporate_view(c, "Account", ["AnnualRevenue"], schema=schema)
        deal_view = create_corporate_view(c, "Deal_Registration__c", ["registered_amount__c"], schema=schema,
                                          date_column="expiry_date__c")
        assert _view_values(c, account_view, schema, ["annualrevenue"]) == \
            corporate_amounts(c, "Account", ["annualrevenue"], schema=schema)
        assert _view_values(c, deal_view, schema, ["registered_amount__c"]) == {
            "a01000000000001AAA": {"registered_amount__c": D("1052.63")}}


def test_the_view_is_replaced_and_follows_rate_changes(org_db):
    engine, schema = org_db
    with engine.begin() as c:
        create_corporate_view(c, "Opportunity", ["amount"], schema=schema)
        create_corporate_view(c, "Opportunity", ["amount"], schema=schema)  # again: replaced, not an error
        dcr = mirrored_table(MetaData(), "DatedConversionRate", CONTRACT["DatedConversionRate"], schema=schema)
        c.execute(update(dcr).where(dcr.c.isocode == "EUR", dcr.c.startdate == day("2025-04-01"))
                  .values(conversionrate=D("0.80")))
        # 1000 EUR at the corrected 0.80 -> 1250.00; the view reads rates when queried
        assert _view_values(c, "opportunity_corporate", schema, ["amount"])["006000000000001AAA"] == {
            "amount": D("1250.00")}
        drop_corporate_view(c, "Opportunity", schema=schema)
        assert "opportunity_corporate" not in inspect(c).get_view_names(schema=schema)
        drop_corporate_view(c, "Opportunity", schema=schema)  # dropping what is not there is fine


def test_a_single_currency_org_converts_nothing(engine, schema):
    columns = {k: v for k, v in CONTRACT["Opportunity"].items() if k != "currencyisocode"}
    with engine.begin() as c:
        t = create_tables(c, ["Opportunity"], schema=schema, overrides={"Opportunity": columns})
        c.execute(insert(t["Opportunity"]), [
            dict(sfid="006000000000001AAA", amount=D("1234.56"), closedate=day("2025-05-10"), isdeleted=False),
            dict(sfid="006000000000002AAA", amount=None, closedate=day("2025-05-10"), isdeleted=False),
            dict(sfid="006000000000003AAA", amount=D("1.00"), closedate=day("2025-05-10"), isdeleted=True)])
        rates = CurrencyTable.load(c, schema)
        assert rates.corporate is None and not rates.is_multi_currency
        assert rates.convert(D("10.005"), "EUR", day("2025-01-01")) == D("10.005")
        assert rates.rate("EUR") == D(1)
        expected = {"006000000000001AAA": {"amount": D("1234.56")}, "006000000000002AAA": {"amount": None}}
        assert corporate_amounts(c, "Opportunity", ["amount"], schema=schema) == expected
        view = create_corporate_view(c, "Opportunity", ["amount"], schema=schema)
        assert _view_values(c, view, schema, ["amount"]) == expected


def test_an_object_without_a_currency_code_in_a_multi_currency_org_is_taken_as_corporate(org_db):
    engine, schema = org_db
    with engine.begin() as c:
        t = create_tables(c, ["Commission__c"], schema=schema,
                          overrides={"Commission__c": {"payout__c": ExactDecimal(18, 2)}})
        c.execute(insert(t["Commission__c"]), [dict(sfid="a02000000000001AAA", payout__c=D("77.77"))])
        expected = {"a02000000000001AAA": {"payout__c": D("77.77")}}
        assert corporate_amounts(c, "Commission__c", ["payout__c"], schema=schema) == expected
        view = create_corporate_view(c, "Commission__c", ["payout__c"], schema=schema)
        assert _view_values(c, view, schema, ["payout__c"]) == expected


def test_without_dated_rates_every_object_uses_the_static_rate(engine, schema):
    with engine.begin() as c:
        t = create_tables(c, ["CurrencyType", "Opportunity"], schema=schema)
        c.execute(insert(t["CurrencyType"]), [
            dict(sfid="01L000000000001AAA", isocode="USD", conversionrate=D(1), decimalplaces=2, isactive=True,
                 iscorporate=True),
            dict(sfid="01L000000000002AAA", isocode="EUR", conversionrate=D("0.9"), decimalplaces=2,
                 isactive=True, iscorporate=False)])
        c.execute(insert(t["Opportunity"]), [dict(sfid="006000000000001AAA", amount=D("1000"),
                                                  currencyisocode="EUR", closedate=day("2025-05-10"))])
        expected = {"006000000000001AAA": {"amount": D("1111.11")}}  # 1000 / 0.9
        assert corporate_amounts(c, "Opportunity", ["amount"], schema=schema) == expected
        assert _view_values(c, create_corporate_view(c, "Opportunity", ["amount"], schema=schema), schema,
                            ["amount"]) == expected


def test_unknown_currencies_and_unsynced_rates_are_reported(org_db):
    engine, schema = org_db
    with engine.begin() as c:
        with pytest.raises(CurrencyError, match="has no column bogus"):
            corporate_amounts(c, "Opportunity", ["bogus"], schema=schema)
        with pytest.raises(CurrencyError, match="no date column nope"):
            corporate_amounts(c, "Opportunity", ["amount"], schema=schema, date_column="nope")
        opportunity = table("opportunity", column("sfid"), column("amount", ExactDecimal(18, 2)),
                            column("currencyisocode"), column("isdeleted", Boolean), schema=schema)
        c.execute(insert(opportunity).values(sfid="006000000000099AAA", amount=D("5"), currencyisocode="CHF",
                                             isdeleted=False))
        with pytest.raises(UnknownCurrency, match="'CHF'"):
            corporate_amounts(c, "Opportunity", ["amount"], schema=schema)
        # the view cannot raise per row: a currency it has no rate for converts to NULL
        view = create_corporate_view(c, "Opportunity", ["amount"], schema=schema)
        assert _view_values(c, view, schema, ["amount"])["006000000000099AAA"] == {"amount": None}
    with engine.begin() as c:
        currency_type = table("currencytype", schema=schema)
        c.execute(currency_type.delete())
        with pytest.raises(CurrencyError, match="empty"):
            CurrencyTable.load(c, schema)


def test_prefixed_tables(engine, schema):
    with engine.begin() as c:
        t = create_tables(c, ["CurrencyType", "Opportunity"], schema=schema, prefix="sf_")
        c.execute(insert(t["CurrencyType"]), [
            dict(sfid="01L000000000001AAA", isocode="GBP", conversionrate=D(1), decimalplaces=2, isactive=True,
                 iscorporate=True),
            dict(sfid="01L000000000002AAA", isocode="JPY", conversionrate=D("190.5"), decimalplaces=0,
                 isactive=True, iscorporate=False)])
        c.execute(insert(t["Opportunity"]), [dict(sfid="006000000000001AAA", amount=D("100000"),
                                                  currencyisocode="JPY", closedate=day("2025-05-10"))])
        # 100000 JPY / 190.5 = 524.9343... GBP -> 524.93
        expected = {"006000000000001AAA": {"amount": D("524.93")}}
        assert corporate_amounts(c, "Opportunity", ["amount"], schema=schema, prefix="sf_") == expected
        view = create_corporate_view(c, "Opportunity", ["amount"], schema=schema, prefix="sf_")
        assert view == "sf_opportunity_corporate"
        assert _view_values(c, view, schema, ["amount"]) == expected
