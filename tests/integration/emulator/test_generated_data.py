"""Data the generic generator makes for an org built from describe payloads obeys the org's own rules,
as a real org's data does: every record has an owner, a creator and a last modifier; a person's Name
is made of the names; a closed-won opportunity is closed and won; a required lookup is never empty."""

from __future__ import annotations

import json

import pytest

from connector.emulator import Emulator
from tests.conftest import connect


@pytest.fixture
def folder_org(sf, tmp_path):
    """A describe folder of the demo org's Account, Opportunity, User and participant
    objects, as `cosell schema snapshot` writes it, with User.Name read-only as in a real org."""
    for name in ("Account", "Opportunity", "Co_Sell_Participant__c", "User"):
        payload = getattr(sf, name).describe()
        (tmp_path / f"{name}.json").write_text(json.dumps(payload))
    with Emulator(tmp_path, records=40, seed=11) as org:
        yield org


def test_every_generated_record_has_an_owner_a_creator_and_a_modifier(folder_org):
    other = connect(folder_org)
    users = {u["Id"] for u in other.query_all("SELECT Id FROM User")["records"]}
    for name in ("Account", "Opportunity", "Co_Sell_Participant__c", "User"):
        fields = {f["name"] for f in getattr(other, name).describe()["fields"]}
        audit = [f for f in ("OwnerId", "CreatedById", "LastModifiedById") if f in fields]
        rows = other.query_all(f"SELECT Id, {', '.join(audit)} FROM {name}")["records"]
        assert rows, name
        for row in rows:
            for f in audit:
                assert row[f] in users, (name, f, row)
    owners = {r["OwnerId"] for r in other.query_all("SELECT OwnerId FROM Opportunity")["records"]}
    assert len(owners) > 1, "owners are drawn from the org's users, not one default"


def test_the_api_user_is_an_active_generated_user(folder_org):
    other = connect(folder_org)
    me = other.query(f"SELECT Id, Username, IsActive FROM User WHERE Username = '{folder_org.username}'")
    assert me["totalSize"] == 1 and me["records"][0]["IsActive"] is True
    created = other.Account.create({"Name": "Made by the API user"})["id"]
    row = other.Account.get(created)
    assert row["CreatedById"] == row["OwnerId"] == me["records"][0]["Id"]


def test_a_persons_name_is_first_and_last_name(folder_org):
    other = connect(folder_org)
    for row in other.query_all("SELECT Name, FirstName, LastName FROM User")["records"]:
        assert row["Name"] == " ".join(p for p in (row["FirstName"], row["LastName"]) if p)


def test_closed_won_opportunities_are_closed_and_won(folder_org):
    other = connect(folder_org)
    rows = other.query_all("SELECT StageName, IsClosed, IsWon FROM Opportunity")["records"]
    assert any(r["StageName"] == "Closed Won" for r in rows)
    for r in rows:
        assert r["IsClosed"] == r["StageName"].startswith("Closed"), r
        assert r["IsWon"] == (r["StageName"] == "Closed Won"), r


def test_a_required_lookup_is_never_empty(folder_org):
    other = connect(folder_org)
    rows = other.query_all("SELECT Opportunity__c FROM Co_Sell_Participant__c")["records"]
    opportunities = {r["Id"] for r in other.query_all("SELECT Id FROM Opportunity")["records"]}
    assert rows and all(r["Opportunity__c"] in opportunities for r in rows)


def test_a_person_created_through_the_api_gets_its_name(emulator):
    """Object reference, Contact/Lead/User: Name is read-only, "concatenation of FirstName, MiddleName,
    LastName, and Suffix"; here a User made by an admin (the demo org's User.Name is read-only too)."""
    sf = connect(emulator)
    fields = {f["name"]: f for f in sf.User.describe()["fields"]}
    assert fields["Name"]["createable"] is False
    user = emulator.create("User", {"Username": "ada@example.com", "LastName": "Lovelace", "FirstName": "Ada",
                                    "Email": "ada@example.com", "Alias": "ada", "TimeZoneSidKey": "Europe/London",
                                    "LocaleSidKey": "en_GB", "LanguageLocaleKey": "en_US",
                                    "EmailEncodingKey": "UTF-8"})
    assert sf.User.get(user)["Name"] == "Ada Lovelace"
    emulator.update("User", user, {"FirstName": None})
    assert sf.User.get(user)["Name"] == "Lovelace"
