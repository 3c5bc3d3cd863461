"""An org built from a folder of real-shaped describe payloads — what an admin's
`schema snapshot` produces — serves the same describe and plausible data."""

from __future__ import annotations

import json

import pytest

from connector.emulator import Emulator, OrgDefinitionError, load_org
from tests.conftest import connect


def _wide_object(n_fields: int) -> dict:
    """A custom object the way a real org describes it, with hundreds of fields of every common type."""
    kinds = [("string", {"length": 80}), ("double", {"precision": 18, "scale": 4}),
             ("currency", {"precision": 16, "scale": 2}), ("date", {}), ("datetime", {}), ("boolean", {}),
             ("picklist", {"length": 255}), ("textarea", {"length": 1000}), ("int", {"digits": 9}),
             ("percent", {"precision": 5, "scale": 2}), ("email", {"length": 80}), ("url", {"length": 255})]
    fields = [
        {"name": "Id", "type": "id", "soapType": "tns:ID", "length": 18, "nillable": False, "createable": False,
         "updateable": False, "custom": False, "label": "Record ID", "picklistValues": [], "referenceTo": []},
        {"name": "IsDeleted", "type": "boolean", "nillable": False, "createable": False, "updateable": False,
         "defaultedOnCreate": True, "custom": False, "label": "Deleted", "picklistValues": [], "referenceTo": []},
        {"name": "Name", "type": "string", "length": 80, "nillable": True, "createable": True, "updateable": True,
         "nameField": True, "custom": False, "label": "Name", "picklistValues": [], "referenceTo": []},
        {"name": "SystemModstamp", "type": "datetime", "nillable": False, "createable": False,
         "updateable": False, "defaultedOnCreate": True, "custom": False, "label": "System Modstamp",
         "picklistValues": [], "referenceTo": []},
    ]
    for i in range(n_fields):
        kind, sizing = kinds[i % len(kinds)]
        field = {"name": f"F{i:03d}__c", "type": kind, "label": f"Field {i}", "custom": True, "nillable": True,
                 "createable": True, "updateable": True, "referenceTo": [], "aiPredictionField": False,
                 "picklistValues": [], **sizing}
        if kind == "picklist":
            field["picklistValues"] = [{"active": True, "defaultValue": False, "label": v, "validFor": None,
                                        "value": v} for v in ("Alpha", "Beta", "Gamma")]
            field["restrictedPicklist"] = True
        fields.append(field)
    return {"name": "Wide__c", "label": "Wide", "labelPlural": "Wides", "keyPrefix": "a9Z", "custom": True,
            "queryable": True, "createable": True, "updateable": True, "deletable": True, "replicateable": True,
            "retrieveable": True, "searchable": True, "fields": fields, "childRelationships": [],
            "recordTypeInfos": [], "someKeyTheModelDoesNotKnow": {"kept": True}}


def test_snapshot_folder_of_the_demo_org_serves_the_same_describe(emulator, sf, tmp_path):
    for name in ("Account", "Opportunity", "Co_Sell_Participant__c", "User"):
        (tmp_path / f"{name}.json").write_text(json.dumps(getattr(sf, name).describe()))
    (tmp_path / "describeGlobal.json").write_text(json.dumps(sf.describe()))
    with Emulator(tmp_path, records=5, seed=3) as copy:
        sf_copy = connect(copy)
        original = {f["name"]: f for f in sf.Opportunity.describe()["fields"]}
        copied = {f["name"]: f for f in sf_copy.Opportunity.describe()["fields"]}
        assert copied.keys() == original.keys()
        for name in ("Amount", "StageName", "CurrencyIsoCode", "Portal_Id__c", "AccountId"):
            assert copied[name] == original[name], name
        assert sf_copy.query("SELECT COUNT() FROM Opportunity")["totalSize"] >= 5
        rows = sf_copy.query("SELECT StageName, Amount, CurrencyIsoCode FROM Opportunity")["records"]
        stages = {p["value"] for p in original["StageName"]["picklistValues"]}
        assert all(r["StageName"] in stages for r in rows)


def test_an_object_with_hundreds_of_fields_mirrors_and_generates_data(tmp_path):
    (tmp_path / "Wide__c.json").write_text(json.dumps(_wide_object(400)))
    with Emulator(tmp_path, records=20, seed=5) as org:
        sf = connect(org)
        described = sf.Wide__c.describe()
        assert len(described["fields"]) >= 404
        assert described["someKeyTheModelDoesNotKnow"] == {"kept": True}, "unknown keys are served as they came"
        rows = list(sf.query_all_iter("SELECT " + ", ".join(f["name"] for f in described["fields"])
                                      + " FROM Wide__c"))
        assert len(rows) == 20
        picklist_values = {r["F006__c"] for r in rows} - {None}
        assert picklist_values <= {"Alpha", "Beta", "Gamma"}
        assert all(r["F000__c"] is None or len(r["F000__c"]) <= 80 for r in rows)


def test_a_folder_with_a_broken_payload_is_refused_with_the_file_named(tmp_path):
    (tmp_path / "Broken__c.json").write_text("{not json")
    with pytest.raises(OrgDefinitionError) as exc:
        load_org(tmp_path)
    assert "Broken__c.json" in str(exc.value) and "not valid JSON" in str(exc.value)
    (tmp_path / "Broken__c.json").write_text(json.dumps({"name": "Broken__c", "fields": [
        {"name": "Weird__c", "type": "hologram"}]}))
    with pytest.raises(OrgDefinitionError) as exc:
        load_org(tmp_path)
    assert "hologram" in str(exc.value) and "known types" in str(exc.value)


def test_an_unknown_org_name_lists_the_shipped_ones():
    with pytest.raises(OrgDefinitionError) as exc:
        load_org("no_such_org")
    assert "cosell_demo" in str(exc.value)
