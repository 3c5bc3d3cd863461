"""Money travels exactly between the connector and the org: an 18-digit currency value written by
the connector's client reaches the emulator digit for digit and reads back the same through an
independent simple-salesforce client (REST JSON and Bulk 2.0 CSV); a value the field cannot hold is
refused with the org's NUMBER_OUTSIDE_VALID_RANGE."""

from __future__ import annotations

from decimal import Decimal

import pytest
from simple_salesforce.exceptions import SalesforceMalformedRequest

from connector.salesforce.client import SalesforceClient
from tests.conftest import connect, settings_for

EIGHTEEN_DIGITS = Decimal("1234567890123456.78")  # Opportunity.Amount is currency(18, 2)


def _deal(**values):
    return {"Name": "Exact deal", "StageName": "Prospecting", "CloseDate": "2026-03-01", **values}


def _amount(sf, record_id):
    return sf.query(f"SELECT Amount FROM Opportunity WHERE Id = '{record_id}'")["records"][0]["Amount"]


def test_an_18_digit_amount_is_created_updated_and_upserted_exactly(emulator):
    client = SalesforceClient(settings_for(emulator))
    reader = connect(emulator, parse_float=Decimal)

    created = client.save("create", "Opportunity", [_deal(Amount=EIGHTEEN_DIGITS)])[0]
    assert created["success"], created
    assert emulator.store.get("Opportunity", created["id"])["Amount"] == EIGHTEEN_DIGITS
    assert _amount(reader, created["id"]) == EIGHTEEN_DIGITS

    updated = client.save("update", "Opportunity", [{"Id": created["id"], "Amount": EIGHTEEN_DIGITS + 1}])[0]
    assert updated["success"], updated
    assert _amount(reader, created["id"]) == Decimal("1234567890123457.78")

    upserted = client.save("upsert", "Opportunity", [_deal(Portal_Id__c="exact-1", Amount=-EIGHTEEN_DIGITS)],
                           external_id="Portal_Id__c")[0]
    assert upserted["success"] and upserted["created"], upserted
    assert _amount(reader, upserted["id"]) == -EIGHTEEN_DIGITS
    assert [r["Amount"] for r in client.query(f"SELECT Amount FROM Opportunity WHERE Id = '{upserted['id']}'")] \
        == [-EIGHTEEN_DIGITS], "the connector reads it back exactly too"


def test_extra_decimals_are_rounded_to_the_field_scale(emulator):
    client = SalesforceClient(settings_for(emulator))
    created = client.save("create", "Opportunity", [_deal(Amount=Decimal("10.005"))])[0]
    assert _amount(connect(emulator, parse_float=Decimal), created["id"]) == Decimal("10.01")


def test_integer_digits_beyond_the_precision_are_refused_as_the_org_refuses_them(emulator):
    client = SalesforceClient(settings_for(emulator))
    result = client.save("create", "Opportunity", [_deal(Amount=Decimal("12345678901234567890")),
                                                   _deal(Amount=Decimal("5.00"))])
    assert result[0]["success"] is False
    assert result[0]["errors"] == [{"statusCode": "NUMBER_OUTSIDE_VALID_RANGE", "fields": ["Amount"],
                                    "message": "Amount: value outside of valid range on numeric field: "
                                               "12345678901234567890"}]
    assert result[1]["success"], "the other record of the batch is saved"

    with pytest.raises(SalesforceMalformedRequest) as raised:
        connect(emulator).Opportunity.create(_deal(Amount=10 ** 16))
    assert raised.value.content[0]["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"


def test_bulk_csv_carries_the_exact_value(emulator):
    client = SalesforceClient(settings_for(emulator))
    record_id = client.save("create", "Opportunity", [_deal(Amount=EIGHTEEN_DIGITS)])[0]["id"]
    soql = f"SELECT Id, Amount FROM Opportunity WHERE Id = '{record_id}'"

    pages = list(connect(emulator).bulk2.Opportunity.query(soql))
    assert pages[0].splitlines()[1] == f'"{record_id}","1234567890123456.78"'
    rows = [row for batch in client.bulk_query("Opportunity", soql, poll_wait=0.01) for row in batch]
    assert rows == [{"Id": record_id, "Amount": "1234567890123456.78"}]
