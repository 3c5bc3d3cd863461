"""Territory assignment rules run when an Account is created or changed, as the
org runs them; the expected territories are worked out by hand from the demo
org's rules (cosell_demo.yaml: UK Enterprise = country UK AND revenue >= 100M,
UK Commercial = country UK AND (revenue < 100M OR revenue empty), DACH = DE/AT/CH)."""

from __future__ import annotations


def _territories(sf, account_id: str) -> set[str]:
    rows = sf.query_all(
        "SELECT Territory2.DeveloperName, AssociationCause FROM ObjectTerritory2Association "
        f"WHERE ObjectId = '{account_id}'")["records"]
    assert all(r["AssociationCause"] == "Territory2AssociationRules" for r in rows)
    return {r["Territory2"]["DeveloperName"] for r in rows}


def test_rules_place_an_account_and_move_it_when_it_changes(emulator, sf):
    dev_name = {r["Id"]: r["DeveloperName"] for r in emulator.records("SELECT Id, DeveloperName FROM Territory2")}
    uk_ent, uk_com = dev_name[emulator.store.ref("t_uk_ent")], dev_name[emulator.store.ref("t_uk_com")]

    account_id = sf.Account.create({"Name": "Big UK plc", "BillingCountry": "United Kingdom",
                                    "AnnualRevenue": 500_000_000})["id"]
    assert _territories(sf, account_id) == {uk_ent}

    sf.Account.update(account_id, {"AnnualRevenue": 5_000_000})
    assert _territories(sf, account_id) == {uk_com}

    sf.Account.update(account_id, {"AnnualRevenue": None})
    assert _territories(sf, account_id) == {uk_com}, "an empty revenue matches the 'equals nothing' item"

    sf.Account.update(account_id, {"BillingCountry": "Austria"})
    assert _territories(sf, account_id) == {dev_name[emulator.store.ref("t_dach")]}

    sf.Account.delete(account_id)
    assert _territories(sf, account_id) == set()


def test_accounts_outside_every_rule_get_no_territory(sf):
    account_id = sf.Account.create({"Name": "Nowhere Ltd", "BillingCountry": "Antarctica"})["id"]
    assert _territories(sf, account_id) == set()


def test_rules_of_a_model_in_planning_do_not_run(emulator, sf):
    account_id = sf.Account.create({"Name": "Huge Inc", "BillingCountry": "United States",
                                    "AnnualRevenue": 900_000_000})["id"]
    names = _territories(sf, account_id)
    planning = {r["DeveloperName"] for r in emulator.records(
        "SELECT DeveloperName FROM Territory2 WHERE Territory2Model.State = 'Planning'")}
    assert names and not names & planning


def test_generated_accounts_and_saved_accounts_are_placed_by_the_same_rules(emulator, sf):
    """The org places the accounts it generates and the accounts a client saves with one evaluator.
    An alphabetical split (Name >= 'N') once placed a generated account and not the same account saved."""
    from connector.emulator.datagen import _TerritoryRules

    model = emulator.records("SELECT Id FROM Territory2Model WHERE State = 'Active'")[0]["Id"]
    territory = emulator.store.ref("t_uk_ent")
    store = emulator.store
    rule = store.new_id("ObjectTerritory2AssignmentRule")
    # Rules are metadata in a real org (deployed, not created through the REST API): load them as the seed does.
    store.bulk_load("ObjectTerritory2AssignmentRule", [{
        "Id": rule, "DeveloperName": "Names_N_To_Z", "MasterLabel": "Names N to Z", "IsActive": True,
        "ObjectType": "Account", "Territory2ModelId": model}])
    store.bulk_load("ObjectTerritory2AssignmentRuleItem", [{
        "Id": store.new_id("ObjectTerritory2AssignmentRuleItem"), "RuleId": rule, "SortOrder": 1,
        "Field": "Account.Name", "Operation": "greaterOrEqual", "Value": "N"}])
    store.bulk_load("RuleTerritory2Association", [{
        "Id": store.new_id("RuleTerritory2Association"), "RuleId": rule, "Territory2Id": territory}])
    record = {"Name": "Round Numbers Ltd", "BillingCountry": "Antarctica", "AnnualRevenue": 1000000.0}
    assert emulator.store.matching_territories(record) == {territory}, "as saved"
    assert set(_TerritoryRules(emulator.store).assign(record)) == {territory}, "as generated"
    account_id = sf.Account.create(record)["id"]
    assert _territories(sf, account_id) == {"UK_Enterprise"} == {
        r["DeveloperName"] for r in emulator.records(f"SELECT DeveloperName FROM Territory2 WHERE Id = '{territory}'")}
