"""Rules a real org enforces that clients run into: conditional writes, the OFFSET ceiling, fields the
describe says cannot be filtered or sorted, and describe payloads served exactly as the org gave them.
Every test goes through simple-salesforce or raw requests over HTTPS; each cites the documented fact."""

from __future__ import annotations

import copy
import json

import pytest
from simple_salesforce import exceptions as sfx

from connector.emulator import Emulator
from connector.emulator.values import http_date, parse_wire_datetime
from tests.conftest import connect


def _error(exc_info) -> dict:
    content = exc_info.value.content
    return content[0] if isinstance(content, list) else content


# -- conditional writes ------------------------------------------------------------------------------

def test_patch_with_a_stale_if_unmodified_since_is_refused_with_412_and_changes_nothing(emulator, sf):
    """REST API Developer Guide, "Conditional requests": a PATCH with If-Unmodified-Since on a record
    modified after that date returns 412 Precondition Failed."""
    acc = sf.Account.create({"Name": "Before"})["id"]
    read_at = parse_wire_datetime(sf.Account.get(acc)["LastModifiedDate"])
    emulator.advance_clock(seconds=5)
    emulator.update("Account", acc, {"Name": "Someone else's edit"})  # a user edits it after our read
    url = f"{sf.base_url}sobjects/Account/{acc}"
    stale = sf.session.patch(url, headers={**sf.headers, "If-Unmodified-Since": http_date(read_at)},
                             data=json.dumps({"Name": "Ours"}), timeout=30)
    assert stale.status_code == 412
    assert sf.Account.get(acc)["Name"] == "Someone else's edit"
    fresh = sf.session.patch(url, headers={**sf.headers, "If-Unmodified-Since":
                                           http_date(parse_wire_datetime(sf.Account.get(acc)["LastModifiedDate"]))},
                             data=json.dumps({"Name": "Ours"}), timeout=30)
    assert fresh.status_code == 204
    assert sf.Account.get(acc)["Name"] == "Ours"


def test_if_unmodified_since_that_is_not_an_http_date_is_a_400(sf):
    acc = sf.Account.create({"Name": "Dated"})["id"]
    response = sf.session.patch(f"{sf.base_url}sobjects/Account/{acc}",
                                headers={**sf.headers, "If-Unmodified-Since": "yesterday"},
                                data=json.dumps({"Name": "x"}), timeout=30)
    assert response.status_code == 400
    assert response.json()[0]["errorCode"] == "INVALID_HEADER_TYPE"
    assert sf.Account.get(acc)["Name"] == "Dated"


# -- OFFSET ----------------------------------------------------------------------------------------

def test_offset_above_2000_is_number_outside_valid_range(sf):
    """SOQL and SOSL Reference, OFFSET: "The maximum offset is 2,000 rows. Requesting an offset greater
    than 2,000 results in a NUMBER_OUTSIDE_VALID_RANGE error." """
    assert sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1 OFFSET 2000")["done"]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FROM Account ORDER BY Id LIMIT 1 OFFSET 2001")
    assert _error(exc)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    assert "2000" in _error(exc)["message"]


# -- filterable / sortable --------------------------------------------------------------------------

def test_long_text_area_cannot_be_filtered_or_sorted_but_a_short_one_can(sf):
    """Object reference: Account.Description (Long Text Area) is neither Filter nor Sort; BillingStreet
    (Text Area 255) is both. The describe says the same, and the query obeys it."""
    fields = {f["name"]: f for f in sf.Account.describe()["fields"]}
    assert (fields["Description"]["filterable"], fields["Description"]["sortable"]) == (False, False)
    assert (fields["BillingStreet"]["filterable"], fields["BillingStreet"]["sortable"]) == (True, True)
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FROM Account WHERE Description = 'x'")
    assert _error(exc)["errorCode"] == "INVALID_FIELD"
    assert "can not be filtered" in _error(exc)["message"]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Id FROM Account ORDER BY Description")
    assert "can not be sorted" in _error(exc)["message"]
    sf.query("SELECT Id FROM Account WHERE BillingStreet != null ORDER BY BillingStreet")


# -- describe folders served as given ---------------------------------------------------------------

def _real_shaped_folder(tmp_path, sf) -> tuple[dict, dict]:
    """The demo org's Account describe with the flags a real org has that the emulator would not guess:
    a custom setting, a non-filterable text field, odd byteLength and permissionable values, and a
    hundred child relationships under names a real org chose; plus a describeGlobal of 110 objects."""
    account = copy.deepcopy(sf.Account.describe())
    account["customSetting"] = True
    account["mergeable"] = True
    account["someFutureKey"] = {"kept": [1, 2, 3]}
    for f in account["fields"]:
        if f["name"] == "AccountNumber":
            f.update(filterable=False, sortable=False, byteLength=123, permissionable=False, groupable=False)
        if f["name"] == "Phone":
            f.update(inlineHelpText="Main line", aiPredictionField=True)
    account["childRelationships"] = [
        {"cascadeDelete": i % 3 == 0, "childSObject": f"Child{i:03d}__c", "deprecatedAndHidden": False,
         "field": "Account__c", "junctionIdListNames": [], "junctionReferenceTo": [],
         "relationshipName": f"OrgChosenName{i:03d}__r", "restrictedDelete": i % 7 == 0}
        for i in range(102)]
    (tmp_path / "Account.json").write_text(json.dumps(account))
    user = sf.User.describe()
    (tmp_path / "User.json").write_text(json.dumps(user))
    global_ = copy.deepcopy(sf.describe())
    template = next(o for o in global_["sobjects"] if o["name"] == "Account")
    global_["sobjects"] = [o for o in global_["sobjects"] if o["name"] in ("Account", "User")] + [
        {**template, "name": f"Extra{i:03d}__c", "label": f"Extra {i}", "keyPrefix": f"b{i:02d}", "custom": True}
        for i in range(108)]
    global_["sobjects"][0] = {**global_["sobjects"][0], "customSetting": True, "mergeable": True}
    (tmp_path / "describeGlobal.json").write_text(json.dumps(global_))
    return account, global_


def test_a_describe_folder_is_served_back_exactly_as_given(sf, tmp_path):
    account, global_ = _real_shaped_folder(tmp_path, sf)
    with Emulator(tmp_path, records=3, seed=2) as copy_org:
        other = connect(copy_org)
        raw = other.session.get(f"{other.base_url}sobjects/Account/describe", headers=other.headers, timeout=30)
        served = raw.json()
        # same keys in the same order with the same values: the JSON text is the payload's own
        assert json.dumps(served) == json.dumps(account)
        listed = other.session.get(f"{other.base_url}sobjects", headers=other.headers, timeout=30).json()
        assert json.dumps(listed) == json.dumps(global_)
        assert len(listed["sobjects"]) == 110


def test_a_describe_folder_orgs_own_flags_govern_its_queries(sf, tmp_path):
    _real_shaped_folder(tmp_path, sf)
    with Emulator(tmp_path, records=3, seed=2) as copy_org:
        other = connect(copy_org)
        with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
            other.query("SELECT Id FROM Account WHERE AccountNumber = '1'")
        assert "can not be filtered" in _error(exc)["message"]
        with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
            other.query("SELECT Id FROM Account ORDER BY AccountNumber")
        assert "can not be sorted" in _error(exc)["message"]
        # fields the payload leaves filterable and sortable still are
        assert other.query("SELECT Id FROM Account WHERE Name != null ORDER BY Name")["done"]


def test_a_change_to_a_folder_org_shows_in_its_describe_and_the_rest_stays_as_given(sf, tmp_path):
    account, _ = _real_shaped_folder(tmp_path, sf)
    with Emulator(tmp_path, records=1, seed=2) as copy_org:
        copy_org.change_field("Account", "AccountNumber", length=60)
        other = connect(copy_org)
        served = {f["name"]: f for f in other.Account.describe()["fields"]}
        given = {f["name"]: f for f in account["fields"]}
        # the length and what follows from it (three bytes a character) change; the org's own flags stay
        assert (served["AccountNumber"]["length"], served["AccountNumber"]["byteLength"]) == (60, 180)
        assert {k: v for k, v in served["AccountNumber"].items() if k not in ("length", "byteLength")} == \
            {k: v for k, v in given["AccountNumber"].items() if k not in ("length", "byteLength")}
        assert served["Phone"] == given["Phone"]


# -- the Organization object -------------------------------------------------------------------------

def test_is_sandbox_reads_the_organization_row(emulator, sf):
    """Object reference, Organization: one row, its Id the org's Id; simple-salesforce's is_sandbox()
    queries IsSandbox from it. It cannot be created or deleted through the API."""
    assert sf.is_sandbox() is False
    (row,) = sf.query("SELECT Id, Name, OrganizationType, InstanceName FROM Organization")["records"]
    assert row["Id"] == emulator.org.organization_id
    assert row["Id"][:15] == sf.session_id.split("!")[0]  # the token names the same org
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Organization.create({"Name": "Second org"})
    assert _error(exc)["errorCode"] == "INVALID_TYPE"


# -- describe/layouts --------------------------------------------------------------------------------

def test_describe_layouts_answers_the_urls_describe_advertises(sf):
    """REST API, sObject Layouts: describe/layouts/ lists the record type mappings (with each record
    type's picklist values); an object with several record types answers null for `layouts` and gives
    each layout at describe/layouts/{recordTypeId}, the URL recordTypeInfos advertise."""
    describe = sf.Opportunity.describe()
    everything = sf.session.get(f"{sf.base_url}sobjects/Opportunity/describe/layouts/", headers=sf.headers,
                                timeout=30).json()
    assert everything["layouts"] is None
    assert everything["recordTypeSelectorRequired"] == [True]
    mappings = {m["developerName"]: m for m in everything["recordTypeMappings"]}
    assert set(mappings) == {rt["developerName"] for rt in describe["recordTypeInfos"]}
    stages = {p["picklistName"]: p for p in mappings["Co_Sell"]["picklistsForRecordType"]}["StageName"]
    described = next(f for f in describe["fields"] if f["name"] == "StageName")
    assert [v["value"] for v in stages["picklistValues"]] == [v["value"] for v in described["picklistValues"]]
    for info in describe["recordTypeInfos"]:
        layout = sf.Opportunity.describe_layout(info["recordTypeId"])
        assert layout["id"] == mappings[info["developerName"]]["layoutId"]
        edit_fields = {c["value"] for s in layout["editLayoutSections"] for r in s["layoutRows"]
                       for i in r["layoutItems"] for c in i["layoutComponents"]}
        assert {"Amount", "StageName", "CloseDate"} <= edit_fields
    missing = sf.session.get(f"{sf.base_url}sobjects/Opportunity/describe/layouts/012000000000099AAA",
                             headers=sf.headers, timeout=30)
    assert missing.status_code == 404


def test_an_object_without_record_types_answers_its_one_layout(sf):
    layouts = sf.session.get(f"{sf.base_url}sobjects/Deal_Registration__c/describe/layouts/", headers=sf.headers,
                             timeout=30).json()
    assert len(layouts["layouts"]) == 1 and layouts["recordTypeSelectorRequired"] == [False]
    assert [m["master"] for m in layouts["recordTypeMappings"]] == [True]


# -- numbers ------------------------------------------------------------------------------------------

def test_numbers_beyond_a_fields_digits_are_refused_and_extra_decimals_round_half_up(sf):
    """API StatusCode NUMBER_OUTSIDE_VALID_RANGE: "The number specified is outside the valid range for
    the field" (NumberOfEmployees holds 8 digits, Amount 16 before the point); a value with more decimals
    than the field's scale is rounded half up (Amount, scale 2: 0.125 -> 0.13, 0.135 -> 0.14)."""
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Account.create({"Name": "Too many people", "NumberOfEmployees": 100_000_000})
    assert _error(exc)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    assert _error(exc)["fields"] == ["NumberOfEmployees"]
    ok = sf.Account.create({"Name": "Just enough", "NumberOfEmployees": 99_999_999})["id"]
    assert sf.Account.get(ok)["NumberOfEmployees"] == 99_999_999
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.Opportunity.create({"Name": "Huge", "StageName": "Prospecting", "CloseDate": "2026-12-31",
                               "Amount": 10_000_000_000_000_000})
    assert _error(exc)["errorCode"] == "NUMBER_OUTSIDE_VALID_RANGE"
    for sent, kept in ((0.125, 0.13), (0.135, 0.14), (2.675, 2.68), (-0.125, -0.13)):
        opp = sf.Opportunity.create({"Name": f"Round {sent}", "StageName": "Prospecting",
                                     "CloseDate": "2026-12-31", "Amount": sent})["id"]
        assert sf.Opportunity.get(opp)["Amount"] == kept, sent


# -- aggregate queries --------------------------------------------------------------------------------

def test_aggregate_functions_and_group_by_answer_aggregate_results(emulator, sf):
    """SOQL and SOSL Reference, Aggregate Functions and GROUP BY: rows of type AggregateResult, an
    unaliased function named expr0, expr1...; COUNT() alone answers totalSize with no records."""
    opportunities = sf.query_all("SELECT StageName, Amount FROM Opportunity")["records"]
    counted = sf.query("SELECT COUNT(Id), COUNT_DISTINCT(StageName) stages FROM Opportunity")
    assert counted["totalSize"] == 1
    (row,) = counted["records"]
    assert row["attributes"] == {"type": "AggregateResult"}
    assert (row["expr0"], row["stages"]) == (len(opportunities), len({o["StageName"] for o in opportunities}))
    assert sf.query("SELECT COUNT() FROM Opportunity")["records"] == []
    grouped = sf.query("SELECT StageName, COUNT(Id) n, SUM(Amount) total, MIN(Amount), MAX(Amount) "
                       "FROM Opportunity GROUP BY StageName ORDER BY StageName")["records"]
    assert [r["StageName"] for r in grouped] == sorted({o["StageName"] for o in opportunities}, key=str.lower)
    for r in grouped:
        amounts = [o["Amount"] for o in opportunities if o["StageName"] == r["StageName"] and o["Amount"] is not None]
        assert r["n"] == sum(o["StageName"] == r["StageName"] for o in opportunities)
        assert r["total"] == pytest.approx(sum(amounts)) if amounts else r["total"] is None
        assert (r["expr0"], r["expr1"]) == ((min(amounts), max(amounts)) if amounts else (None, None))
    limited = sf.query("SELECT StageName, COUNT(Id) FROM Opportunity GROUP BY StageName ORDER BY StageName LIMIT 2")
    assert [r["StageName"] for r in limited["records"]] == [r["StageName"] for r in grouped[:2]]
    nothing = sf.query("SELECT SUM(Amount) FROM Opportunity WHERE Name = 'no such deal'")["records"]
    assert nothing[0]["expr0"] is None


def test_aggregate_queries_refuse_what_salesforce_refuses(sf):
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Name, COUNT(Id) FROM Opportunity GROUP BY StageName")
    assert _error(exc)["errorCode"] == "MALFORMED_QUERY"
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT Amount FROM Opportunity GROUP BY Amount")  # currency is not groupable
    assert "can not be grouped" in _error(exc)["message"]
    with pytest.raises(sfx.SalesforceMalformedRequest) as exc:
        sf.query("SELECT SUM(Name) FROM Opportunity")
    assert "does not support aggregate operator SUM" in _error(exc)["message"]


def test_child_relationships_carry_the_names_an_org_gives_them(sf):
    """Account's describe in a real org lists Opportunities (Opportunity.AccountId) and ChildAccounts
    (Account.ParentId); two custom lookups to one parent need two names, as the package declares them."""
    children = {(c["childSObject"], c["field"]): c["relationshipName"]
                for c in sf.Account.describe()["childRelationships"]}
    assert children[("Opportunity", "AccountId")] == "Opportunities"
    assert children[("Account", "ParentId")] == "ChildAccounts"
    assert children[("Deal_Registration__c", "Partner_Account__c")] == "Deal_Registrations__r"
    assert children[("Deal_Registration__c", "End_Customer_Account__c")] == "End_Customer_Deal_Registrations__r"
    assert len(set(children.values())) == len(children)
