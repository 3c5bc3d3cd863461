"""The emulator behaves as a real org where the connector relies on it: every
test goes through simple-salesforce over HTTPS and asserts the status code, the
error code and the simple-salesforce exception a real org would produce."""

from __future__ import annotations

import datetime as dt
import math
import re

import pytest
import requests
from simple_salesforce import exceptions as sfx

from connector.emulator import ids
from connector.salesforce.http import SalesforceSession
from tests.conftest import connect

UTC = dt.timezone.utc
WIRE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$")


def _opportunity(name: str, **extra) -> dict:
    return {"Name": name, "StageName": "Prospecting", "CloseDate": "2026-03-31", **extra}


def _error(exc_info) -> dict:
    content = exc_info.value.content
    return content[0] if isinstance(content, list) else content


# -- TLS and discovery ------------------------------------------------------------------------

def test_tls_is_verified_against_the_emulator_certificate(emulator):
    """A client that does not trust the emulator's certificate is refused; one that does connects."""
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"{emulator.instance_url}/services/data/", timeout=10)
    session = SalesforceSession(ca_cert=emulator.ca_cert)
    versions = session.get(f"{emulator.instance_url}/services/data/", timeout=10).json()
    assert {"label", "url", "version"} <= set(versions[-1])
    assert [float(v["version"]) for v in versions] == sorted(float(v["version"]) for v in versions)


def test_describe_global_and_describe_in_the_real_shape(sf):
    global_describe = sf.describe()
    names = {o["name"]: o for o in global_describe["sobjects"]}
    assert names["Account"]["keyPrefix"] == "001" and names["Opportunity"]["keyPrefix"] == "006"
    assert names["Co_Sell_Participant__c"]["custom"] is True
    assert global_describe["maxBatchSize"] == 200

    describe = sf.Opportunity.describe()
    fields = {f["name"]: f for f in describe["fields"]}
    assert len(fields["Amount"]) >= 55, "every field carries the full set of describe keys"
    assert (fields["Amount"]["type"], fields["Amount"]["precision"], fields["Amount"]["scale"]) == ("currency", 18, 2)
    assert fields["Amount"]["soapType"] == "xsd:double"
    assert fields["CurrencyIsoCode"]["restrictedPicklist"] is True
    assert {p["value"] for p in fields["CurrencyIsoCode"]["picklistValues"]} >= {"USD", "EUR", "GBP", "JPY", "INR"}
    assert fields["Portal_Id__c"]["externalId"] is True and fields["Portal_Id__c"]["idLookup"] is True
    assert fields["SystemModstamp"]["createable"] is False
    assert any(r["master"] and r["recordTypeId"] == "012000000000000AAA" for r in describe["recordTypeInfos"])

    participant = {f["name"]: f for f in sf.Co_Sell_Participant__c.describe()["fields"]}
    assert participant["Opportunity__c"]["referenceTo"] == ["Opportunity"]
    assert participant["Opportunity__c"]["cascadeDelete"] is True, "master-detail"
    children = {c["childSObject"] for c in describe["childRelationships"]}
    assert {"Co_Sell_Participant__c", "Deal_Registration__c"} <= children

    account = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert account["BillingAddress"]["type"] == "address"
    assert account["BillingCity"]["compoundFieldName"] == "BillingAddress"


def test_describe_if_modified_since_answers_304_until_metadata_changes(emulator, sf):
    """A 304 is >= 300, so simple-salesforce raises SalesforceGeneralError(status=304), as SALESFORCE_API.md says."""
    later = (emulator.clock.now() + dt.timedelta(seconds=1)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    with pytest.raises(sfx.SalesforceGeneralError) as exc:
        sf.Opportunity.describe(headers={"If-Modified-Since": later})
    assert exc.value.status == 304
    emulator.advance_clock(seconds=5)
    emulator.add_field("Opportunity", "Partner_Notes__c", "textarea", length=2000)
    fields = {f["name"] for f in sf.Opportunity.describe(headers={"If-Modified-Since": later})["fields"]}
    assert "Partner_Notes__c" in fields


# -- records ----------------------------------------------------------------------------------

def test_records_get_18_character_ids_and_whole_second_timestamps(emulator, sf):
    created = sf.Opportunity.create(_opportunity("Ids and stamps"))
    assert created["success"] is True and created["errors"] == []
    record_id = created["id"]
    assert len(record_id) == 18 and record_id.startswith("006")
    assert ids.checksum(record_id[:15]) == record_id[15:]
    record = sf.Opportunity.get(record_id)
    assert WIRE_DATETIME.match(record["SystemModstamp"]) and WIRE_DATETIME.match(record["CreatedDate"])
    assert record["attributes"] == {"type": "Opportunity",
                                    "url": f"/services/data/v59.0/sobjects/Opportunity/{record_id}"}
    assert record["CurrencyIsoCode"] == "USD", "the corporate currency is the default"
    # A 15-character Id reaches the same record.
    assert sf.Opportunity.get(record_id[:15])["Id"] == record_id


def test_update_and_delete_return_204_and_deleted_rows_are_in_the_recycle_bin(sf):
    record_id = sf.Opportunity.create(_opportunity("To delete"))["id"]
    assert sf.Opportunity.update(record_id, {"Amount": 1234.5}) == 204
    assert sf.Opportunity.delete(record_id) == 204
    with pytest.raises(sfx.SalesforceResourceNotFound) as exc:
        sf.Opportunity.get(record_id)
    assert exc.value.status == 404 and _error(exc)["errorCode"] == "ENTITY_IS_DELETED"
    soql = f"SELECT Id, IsDeleted FROM Opportunity WHERE Id = '{record_id}'"
    assert sf.query(soql)["totalSize"] == 0
    deleted = sf.query_all(soql, include_deleted=True)["records"]
    assert [(r["Id"], r["IsDeleted"]) for r in deleted] == [(record_id, True)]


def test_upsert_by_external_id_creates_then_updates(sf):
    key = "c1b7a0a2-6f0e-4a55-9a43-4f8c3f1f0001"
    assert sf.Opportunity.upsert(f"Portal_Id__c/{key}", _opportunity("Upserted")) == 201
    assert sf.Opportunity.upsert(f"Portal_Id__c/{key}", {"Amount": 99.99}) == 200
    rows = sf.query(f"SELECT Id, Amount FROM Opportunity WHERE Portal_Id__c = '{key}'")["records"]
    assert len(rows) == 1 and rows[0]["Amount"] == 99.99
    raw = sf.Opportunity.upsert(f"Portal_Id__c/{key}", {"Amount": 5}, raw_response=True)
    assert raw.json()["created"] is False and raw.json()["id"] == rows[0]["Id"]


def test_value_fidelity_decimals_dates_multipicklists_and_compound_address(emulator, sf):
    account_id = sf.Account.create({"Name": "Fidelity GmbH", "BillingStreet": "1 Main St\nFloor 2",
                                    "BillingCity": "Berlin", "BillingCountry": "Germany",
                                    "BillingLatitude": 52.520008, "BillingLongitude": 13.404954,
                                    "AnnualRevenue": 123456789012345})["id"]
    record = sf.Account.get(account_id)
    assert record["BillingAddress"]["city"] == "Berlin"
    assert record["BillingAddress"]["street"] == "1 Main St\nFloor 2"
    assert record["BillingAddress"]["latitude"] == 52.520008
    assert record["AnnualRevenue"] == 123456789012345
    opp_id = sf.Opportunity.create(_opportunity("Decimals", Amount=1234567.891, CloseDate="2026-02-28",
                                                AccountId=account_id))["id"]
    decimal_sf = connect(emulator, parse_float=__import__("decimal").Decimal)
    row = decimal_sf.query(f"SELECT Amount, CloseDate, Account.Name FROM Opportunity WHERE Id = '{opp_id}'")
    rec = row["records"][0]
    assert str(rec["Amount"]) == "1234567.89", "currency is rounded to the field's scale, as the org does"
    assert rec["CloseDate"] == "2026-02-28"
    assert rec["Account"]["Name"] == "Fidelity GmbH"


# -- queries ----------------------------------------------------------------------------------

def test_query_all_iter_pages_with_next_records_url(emulator, sf):
    existing = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    new = 4100
    with emulator.store.lock:
        emulator.store.bulk_load("Account", ({"Id": emulator.store.new_id("Account"), "Name": f"Paged {i}"}
                                             for i in range(new)))
    emulator.calls.reset()
    names = [r["Name"] for r in sf.query_all_iter("SELECT Id, Name FROM Account")]
    assert len(names) == existing + new and len(set(names)) == len(names)
    pages = math.ceil((existing + new) / 2000)
    assert emulator.calls["query"] == 1 and emulator.calls["query_more"] == pages - 1
    first = sf.query("SELECT Id FROM Account")
    assert first["done"] is False and first["nextRecordsUrl"].startswith("/services/data/v59.0/query/01g")
    assert len(first["records"]) == 2000
    small = sf.query("SELECT Id FROM Account", headers={"Sforce-Query-Options": "batchSize=500"})
    assert len(small["records"]) == 500


def test_soql_errors_have_real_codes_and_caret_messages(sf):
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id, Nope__c FROM Opportunity")
    err = _error(exc)
    assert exc.value.status == 400 and err["errorCode"] == "INVALID_FIELD"
    assert "ERROR at Row:1:Column:12" in err["message"] and "No such column 'Nope__c'" in err["message"]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FROM Xyzzy__c")
    assert _error(exc)["errorCode"] == "INVALID_TYPE"
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FROM Opportunity WHERE")
    assert _error(exc)["errorCode"] == "MALFORMED_QUERY"


def test_updated_and_deleted_replication_windows(emulator, sf):
    start = emulator.clock.now() - dt.timedelta(minutes=1)
    kept = sf.Opportunity.create(_opportunity("Replicated"))["id"]
    gone = sf.Opportunity.create(_opportunity("Replicated then deleted"))["id"]
    sf.Opportunity.delete(gone)
    # The replication API covers whole minutes only: the current minute is not covered yet.
    assert kept not in sf.Opportunity.updated(start, emulator.clock.now() + dt.timedelta(minutes=2))["ids"]
    emulator.advance_clock(minutes=2)
    end = emulator.clock.now()
    updated = sf.Opportunity.updated(start, end)
    assert kept in updated["ids"] and gone not in updated["ids"]
    assert WIRE_DATETIME.match(updated["latestDateCovered"])
    deleted = sf.Opportunity.deleted(start, end)
    assert [d["id"] for d in deleted["deletedRecords"]] == [gone]
    assert deleted["earliestDateAvailable"] <= deleted["deletedRecords"][0]["deletedDate"]
    # Sixteen days later the delete log no longer reaches back: earliestDateAvailable moves past it.
    emulator.advance_clock(days=16)
    now = emulator.clock.now()
    later = sf.Opportunity.deleted(now - dt.timedelta(days=20), now)
    assert later["deletedRecords"] == []
    assert later["earliestDateAvailable"] > deleted["deletedRecords"][0]["deletedDate"]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Opportunity.updated(now - dt.timedelta(days=31), now)
    assert _error(exc)["errorCode"] == "INVALID_REPLICATION_DATE"


# -- composite and collections -----------------------------------------------------------------

def test_collections_create_update_upsert_retrieve_delete(sf):
    created = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Opportunity"}, **_opportunity("Coll A")},
        {"attributes": {"type": "Opportunity"}, "Name": "Coll B missing stage", "CloseDate": "2026-01-01"},
        {"attributes": {"type": "Account"}, "Name": "Coll Account"},
    ]})
    assert [r["success"] for r in created] == [True, False, True]
    assert created[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert created[1]["errors"][0]["fields"] == ["StageName"]
    opp_id = created[0]["id"]
    updated = sf.restful("composite/sobjects", method="PATCH", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Opportunity"}, "Id": opp_id, "Amount": 10},
        {"attributes": {"type": "Opportunity"}, "Id": "006000000000000AAA", "Amount": 10}]})
    assert updated[0] == {"id": opp_id, "success": True, "errors": []}
    assert updated[1]["success"] is False
    upserted = sf.restful("composite/sobjects/Opportunity/Portal_Id__c", method="PATCH", json={
        "allOrNone": False, "records": [
            {"attributes": {"type": "Opportunity"}, "Portal_Id__c": "u-1", **_opportunity("Coll U")},
            {"attributes": {"type": "Opportunity"}, "Portal_Id__c": "u-1", "Amount": 7}]})
    assert [r["created"] for r in upserted] == [True, False]
    retrieved = sf.restful("composite/sobjects/Opportunity", params={
        "ids": f"{opp_id},{upserted[0]['id']}", "fields": "Id,Amount"})
    assert [r["Amount"] for r in retrieved] == [10, 7]
    deleted = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{opp_id},{upserted[0]['id']}", "allOrNone": "false"})
    assert all(r["success"] for r in deleted)


def test_collections_all_or_none_rolls_back_every_record(emulator, sf):
    before = emulator.store.count("Opportunity")
    result = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Opportunity"}, **_opportunity("Rolled back A")},
        {"attributes": {"type": "Opportunity"}, **_opportunity("Bad", StageName="Not A Stage")},
    ]})
    assert result[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert result[1]["errors"][0]["statusCode"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"
    assert emulator.store.count("Opportunity") == before
    assert sf.query("SELECT COUNT() FROM Opportunity WHERE Name = 'Rolled back A'")["totalSize"] == 0


def test_collections_refuse_more_than_200_records(sf):
    records = [{"attributes": {"type": "Account"}, "Name": f"A{i}"} for i in range(201)]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": records})
    assert _error(exc)["errorCode"] == "EXCEEDED_ID_LIMIT"


def test_composite_runs_up_to_five_queries_in_one_call(emulator, sf):
    emulator.calls.reset()
    objects = ["Account", "Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c", "User"]
    body = {"allOrNone": False, "compositeRequest": [
        {"method": "GET", "referenceId": f"q{i}",
         "url": f"/services/data/v59.0/query?q=SELECT+Id+FROM+{name}+LIMIT+3"} for i, name in enumerate(objects)]}
    result = sf.restful("composite", method="POST", json=body)
    assert [r["httpStatusCode"] for r in result["compositeResponse"]] == [200] * 5
    assert emulator.calls.total() == 1
    body["compositeRequest"].append({"method": "GET", "referenceId": "q6",
                                     "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Account"})
    with pytest.raises(sfx.SalesforceMalformedRequest):
        sf.restful("composite", method="POST", json=body)


def test_composite_subrequests_reference_earlier_results(sf):
    result = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Account", "referenceId": "acct",
         "body": {"Name": "Composite Parent"}},
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Opportunity", "referenceId": "opp",
         "body": _opportunity("Composite Child", AccountId="@{acct.id}")}]})
    statuses = [r["httpStatusCode"] for r in result["compositeResponse"]]
    assert statuses == [201, 201]
    opp = sf.Opportunity.get(result["compositeResponse"][1]["body"]["id"])
    assert opp["AccountId"] == result["compositeResponse"][0]["body"]["id"]


def test_composite_batch_describes_25_objects_per_call(emulator, sf):
    emulator.calls.reset()
    names = [o.name for o in emulator.org.objects][:25]
    result = sf.restful("composite/batch", method="POST", json={"batchRequests": [
        {"method": "GET", "url": f"v59.0/sobjects/{n}/describe"} for n in names]})
    assert result["hasErrors"] is False
    assert [r["result"]["name"] for r in result["results"]] == names
    assert emulator.calls.total() == 1


# -- Bulk 2.0 ---------------------------------------------------------------------------------

def test_bulk2_query_pages_csv_with_locator_and_z_datetimes(emulator, sf):
    total = sf.query("SELECT COUNT() FROM Opportunity")["totalSize"]
    assert total >= 10
    emulator.calls.reset()
    pages = list(sf.bulk2.Opportunity.query("SELECT Id, Name, Amount, CreatedDate, Account.Name FROM Opportunity",
                                            max_records=7, wait=0))
    assert len(pages) == math.ceil(total / 7)
    header, *rows = pages[0].splitlines()
    assert header == '"Id","Name","Amount","CreatedDate","Account.Name"'
    assert re.search(r'"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000Z"', rows[0])
    assert sum(len(p.splitlines()) - 1 for p in pages) == total
    assert emulator.calls["bulk2_create"] == 1 and emulator.calls["bulk2_results"] == len(pages)


def test_bulk2_refuses_compound_fields(sf):
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    with pytest.raises(SalesforceMalformedRequest) as exc:
        list(sf.bulk2.Account.query("SELECT Id, BillingAddress FROM Account", wait=0))
    assert "compound" in _error(exc)["message"].lower()


# -- save errors ------------------------------------------------------------------------------

@pytest.mark.parametrize("values, code, fields", [
    ({"Name": "No stage", "CloseDate": "2026-01-01"}, "REQUIRED_FIELD_MISSING", ["StageName"]),
    (_opportunity("Bad stage", StageName="Maybe"), "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["StageName"]),
    (_opportunity("Read only", IsWon=True), "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsWon"]),
    (_opportunity("x" * 121), "STRING_TOO_LONG", ["Name"]),
    (_opportunity("Bad id", AccountId="not-an-id"), "MALFORMED_ID", ["AccountId"]),
    (_opportunity("Missing parent", AccountId=ids.make_id("001", 999999)), "INVALID_CROSS_REFERENCE_KEY", ["AccountId"]),
])
def test_create_errors_are_the_real_codes(sf, values, code, fields):
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Opportunity.create(values)
    err = _error(exc)
    assert exc.value.status == 400 and err["errorCode"] == code and err["fields"] == fields


def test_duplicate_external_id_and_deleted_parent(sf):
    sf.Opportunity.create(_opportunity("Dup 1", Portal_Id__c="dup-key"))
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Opportunity.create(_opportunity("Dup 2", Portal_Id__c="DUP-KEY"))
    assert _error(exc)["errorCode"] == "DUPLICATE_VALUE"
    account_id = sf.Account.create({"Name": "Soon deleted"})["id"]
    sf.Account.delete(account_id)
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Opportunity.create(_opportunity("Orphan", AccountId=account_id))
    assert _error(exc)["errorCode"] == "ENTITY_IS_DELETED"


def test_validation_rule_is_enforced_with_its_message(emulator, sf):
    rule = emulator.org.get_object("Deal_Registration__c").validation_rules[0]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Deal_Registration__c.create({"Status__c": "Rejected"})
    err = _error(exc)
    assert err["errorCode"] == "FIELD_CUSTOM_VALIDATION_EXCEPTION" and err["message"] == rule.message


def test_master_detail_children_are_deleted_with_their_parent(emulator, sf):
    opp_id = sf.Opportunity.create(_opportunity("Parent"))["id"]
    child = sf.Co_Sell_Participant__c.create({"Opportunity__c": opp_id, "Role__c": "Cloud Provider"})["id"]
    sf.Opportunity.delete(opp_id)
    rows = sf.query_all(f"SELECT Id, IsDeleted FROM Co_Sell_Participant__c WHERE Id = '{child}'",
                        include_deleted=True)["records"]
    assert rows[0]["IsDeleted"] is True


# -- sessions, limits and faults ---------------------------------------------------------------

def test_expired_session_is_401_invalid_session_id(emulator, sf):
    emulator.expire_sessions()
    with pytest.raises(sfx.SalesforceExpiredSession) as exc:
        sf.query("SELECT Id FROM Account")
    assert exc.value.status == 401 and _error(exc)["errorCode"] == "INVALID_SESSION_ID"


def test_daily_limit_ends_in_request_limit_exceeded(emulator, sf):
    emulator.set_daily_limit(5, used=4)
    sf.query("SELECT Id FROM Account LIMIT 1")
    assert sf.api_usage["api-usage"].used == 5 and sf.api_usage["api-usage"].total == 5
    with pytest.raises(sfx.SalesforceRefusedRequest) as exc:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert exc.value.status == 403 and _error(exc)["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert _error(exc)["message"] == "TotalRequests Limit exceeded."


def test_limits_resource_reports_daily_api_requests(emulator, sf):
    limits = sf.limits()
    assert limits["DailyApiRequests"]["Max"] == 15000
    assert limits["DailyApiRequests"]["Remaining"] == 15000 - emulator.api_used


def test_fault_injection_next_calls_and_dropped_connections(emulator, sf):
    emulator.faults.fail_next(1, status=503, error_code="SERVER_UNAVAILABLE")
    with pytest.raises(sfx.SalesforceGeneralError) as exc:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert exc.value.status == 503
    emulator.faults.fail_next(1, status=400, error_code="UNABLE_TO_LOCK_ROW",
                              message="unable to obtain exclusive access to this record", method="POST")
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Account.create({"Name": "Locked"})
    assert _error(exc)["errorCode"] == "UNABLE_TO_LOCK_ROW"
    emulator.faults.drop_next(1)
    with pytest.raises(requests.exceptions.ConnectionError):
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert sf.query("SELECT Id FROM Account LIMIT 1")["totalSize"] == 1, "the next call goes through"


def test_random_faults_are_seeded_and_roughly_the_asked_share(emulator, sf):
    emulator.faults.fail_randomly(0.3, seed=11, actions=("error",))
    failures = 0
    for _ in range(100):
        try:
            sf.query("SELECT Id FROM Account LIMIT 1")
        except sfx.SalesforceError:
            failures += 1
    assert 15 <= failures <= 45


# -- acting as a user and changing metadata ------------------------------------------------------

def test_changes_made_as_a_salesforce_user_are_seen_by_clients(emulator, sf):
    account_id = emulator.create("Account", {"Name": "Made in the org"})
    assert sf.Account.get(account_id)["Name"] == "Made in the org"
    emulator.update("Account", account_id, {"Name": "Renamed in the org"})
    assert sf.Account.get(account_id)["Name"] == "Renamed in the org"
    emulator.add_picklist_value("Opportunity", "Co_Sell_Motion__c", "Marketplace Private Offer")
    values = {p["value"] for f in sf.Opportunity.describe()["fields"] if f["name"] == "Co_Sell_Motion__c"
              for p in f["picklistValues"]}
    assert "Marketplace Private Offer" in values
    emulator.change_field("Account", "Name", length=300)
    assert {f["name"]: f for f in sf.Account.describe()["fields"]}["Name"]["length"] == 300
    emulator.remove_field("Opportunity", "NextStep")
    with pytest.raises(sfx.SalesforceMalformedRequest):
        sf.query("SELECT NextStep FROM Opportunity")


def test_a_parent_can_be_named_by_its_external_id(sf):
    key = "0e7a4a8e-parent-0001"
    parent = sf.Opportunity.create(_opportunity("Parent by key", Portal_Id__c=key))["id"]
    child = sf.Co_Sell_Participant__c.create({"Opportunity__r": {"Portal_Id__c": key}, "Role__c": "Reseller"})
    assert sf.Co_Sell_Participant__c.get(child["id"])["Opportunity__c"] == parent
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Co_Sell_Participant__c.create({"Opportunity__r": {"Portal_Id__c": "missing"}, "Role__c": "Reseller"})
    assert _error(exc)["errorCode"] == "INVALID_FIELD"
    assert "Foreign key external ID: missing not found" in _error(exc)["message"]


def test_the_date_header_carries_the_org_time(emulator, sf):
    import email.utils

    emulator.advance_clock(days=3)
    response = sf.session.get(f"{emulator.instance_url}/services/data/v59.0/limits",
                              headers={"Authorization": f"Bearer {sf.session_id}"})
    served = email.utils.parsedate_to_datetime(response.headers["Date"])
    assert abs((served - emulator.clock.now()).total_seconds()) <= 2


def test_is_won_and_is_closed_follow_the_stage(sf):
    opp = sf.Opportunity.create(_opportunity("Stage driven"))["id"]
    assert (sf.Opportunity.get(opp)["IsClosed"], sf.Opportunity.get(opp)["IsWon"]) == (False, False)
    sf.Opportunity.update(opp, {"StageName": "Closed Won", "Amount": 10, "Marketplace_Offer_Id__c": "o-1"})
    assert (sf.Opportunity.get(opp)["IsClosed"], sf.Opportunity.get(opp)["IsWon"]) == (True, True)
    sf.Opportunity.update(opp, {"StageName": "Closed Lost"})
    assert (sf.Opportunity.get(opp)["IsClosed"], sf.Opportunity.get(opp)["IsWon"]) == (True, False)
