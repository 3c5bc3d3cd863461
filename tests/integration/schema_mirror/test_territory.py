"""The territory model read from mirrored tables on SQLite and PostgreSQL: the local rule evaluator
gives every account of the demo org exactly the territories the org's own rules gave it, the
hierarchy comes back in one query each way, and hand-worked cases from cosell_demo.yaml hold."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from connector.emulator import Emulator
from connector.schema_mirror.territory import (TerritoryError, TerritoryModel, account_territories, ancestors,
                                               descendants, hierarchy_cte)
from tests.integration.schema_mirror.mirror_tables import TERRITORY_OBJECTS, copy_from_org, create_tables

RULES = "Territory2AssociationRules"


@pytest.fixture(scope="module")
def org():
    with Emulator("cosell_demo", records=200, seed=3) as emulated:
        # leave deleted rows behind: an account, and with it its rule-made associations
        uk = emulated.records("SELECT Id FROM Account WHERE BillingCountry = 'United Kingdom' ORDER BY Name")
        emulated.delete("Account", uk[0]["Id"])
        yield emulated


@pytest.fixture
def mirror(org, engine, schema):
    """The demo org's territory objects and accounts, copied into contract tables."""
    with engine.begin() as c:
        tables = create_tables(c, [*TERRITORY_OBJECTS, "Account"], schema=schema)
        wire = copy_from_org(c, org, tables)
    return engine, schema, tables, wire


def _ids_by_developer_name(wire) -> dict[str, str]:
    return {t["DeveloperName"]: t["Id"] for t in wire["Territory2"]}


def test_every_account_gets_the_territories_the_org_gave_it(org, mirror):
    engine, schema, tables, wire = mirror
    expected: dict[str, set[str]] = defaultdict(set)
    for assoc in wire["ObjectTerritory2Association"]:
        if assoc["AssociationCause"] == RULES and not assoc["IsDeleted"]:
            expected[assoc["ObjectId"]].add(assoc["Territory2Id"])
    account = tables["Account"]
    with engine.connect() as c:
        model = TerritoryModel.load(c, schema)
        rows = c.execute(select(account).where(account.c.isdeleted.is_(False))).all()
        checked = 0
        for row in rows:
            got = model.matching_territories(row._mapping)
            assert got == expected.get(row.sfid, set()), row._mapping
            assert got == account_territories(c, row.sfid, schema=schema, cause=RULES)
            checked += 1
    live_accounts = [a for a in wire["Account"] if not a["IsDeleted"]]
    assert checked == len(live_accounts) > 50
    assert sum(1 for ids in expected.values() if ids) > 30, "the demo org should place most accounts"
    # the same evaluator on the org's own records, keyed by API names with wire values
    for record in live_accounts:
        assert model.matching_territories(record) == org.store.matching_territories(record)


def test_deleted_associations_are_not_an_accounts_territories(mirror):
    engine, schema, tables, wire = mirror
    deleted = [a for a in wire["ObjectTerritory2Association"] if a["IsDeleted"]]
    assert deleted, "the fixture deletes an account, which deletes its associations"
    with engine.connect() as c:
        for assoc in deleted:
            assert assoc["Territory2Id"] not in account_territories(c, assoc["ObjectId"], schema=schema)


def test_hand_checked_accounts(mirror):
    engine, schema, tables, wire = mirror
    ids = _ids_by_developer_name(wire)
    with engine.connect() as c:
        model = TerritoryModel.load(c, schema)
    assert model.model.developer_name == "FY26_Global_Territories"
    assert model.rule_fields == {"billingcountry", "annualrevenue"}
    match = model.matching_territories
    # UK Enterprise: country UK AND revenue >= 100M
    assert match({"BillingCountry": "United Kingdom", "AnnualRevenue": Decimal("500000000")}) == {ids["UK_Enterprise"]}
    # UK Commercial: country UK AND (revenue < 100M OR revenue equals nothing)
    assert match({"billingcountry": "United Kingdom", "annualrevenue": None}) == {ids["UK_Commercial"]}
    assert match({"billingcountry": "united kingdom", "annualrevenue": Decimal("5000000")}) == {ids["UK_Commercial"]}
    assert match({"billingcountry": "United Kingdom"}) == {ids["UK_Commercial"]}  # absent = empty
    # DACH: Germany OR Austria OR Switzerland
    assert match({"billingcountry": "Germany"}) == {ids["DACH"]}
    assert match({"BillingCountry": "SWITZERLAND", "AnnualRevenue": 10}) == {ids["DACH"]}
    # "Brazil,Mexico" is a list: either matches
    assert match({"billingcountry": "Mexico"}) == {ids["LATAM"]}
    # US Commercial: (United States OR USA) AND revenue < 100M; exactly 100M is enterprise
    assert match({"billingcountry": "USA", "annualrevenue": Decimal("99999999")}) == {ids["US_Commercial"]}
    assert match({"billingcountry": "United States", "annualrevenue": Decimal("100000000")}) == {ids["US_Enterprise"]}
    assert match({"billingcountry": "Antarctica", "annualrevenue": Decimal("1")}) == set()


def test_rules_of_the_planning_model_are_ignored(mirror):
    engine, schema, tables, wire = mirror
    ids = _ids_by_developer_name(wire)
    rule, model_t = tables["ObjectTerritory2AssignmentRule"], tables["Territory2Model"]
    huge_us = {"billingcountry": "United States", "annualrevenue": Decimal("900000000")}
    with engine.begin() as c:
        # even switched on, the FY27 rule (revenue >= 250M -> FY27 Global Enterprise) is in a Planning model
        c.execute(update(rule).where(rule.c.developername == "FY27_Enterprise").values(isactive=True))
        model = TerritoryModel.load(c, schema)
        assert model.matching_territories(huge_us) == {ids["US_Enterprise"]}
        assert all(t.model_id == model.model.id for t in model.territories.values())
        assert "FY27_Global" not in {t.developer_name for t in model.territories.values()}
        # activate FY27 instead (archive FY26): now only its rule runs
        c.execute(update(model_t).values(state="Archived"))
        c.execute(update(model_t).where(model_t.c.developername == "FY27_Planning").values(state="Active"))
        fy27 = TerritoryModel.load(c, schema)
        assert fy27.model.developer_name == "FY27_Planning"
        assert fy27.matching_territories(huge_us) == {ids["FY27_Global_Enterprise"]}
        assert fy27.matching_territories({"billingcountry": "United Kingdom"}) == set()
        # no active model at all: nothing is assigned
        c.execute(update(model_t).values(state="Archived"))
        assert TerritoryModel.load(c, schema).matching_territories(huge_us) == set()
        c.execute(update(model_t).values(state="Active"))
        with pytest.raises(TerritoryError, match="at most one"):
            TerritoryModel.load(c, schema)


def test_inactive_and_deleted_rules_do_not_run(mirror):
    engine, schema, tables, wire = mirror
    ids = _ids_by_developer_name(wire)
    rule = tables["ObjectTerritory2AssignmentRule"]
    with engine.begin() as c:
        c.execute(update(rule).where(rule.c.developername == "DACH_Accounts").values(isactive=False))
        c.execute(update(rule).where(rule.c.developername == "France_Accounts").values(isdeleted=True))
        model = TerritoryModel.load(c, schema)
    assert model.matching_territories({"billingcountry": "Germany"}) == set()
    assert model.matching_territories({"billingcountry": "France"}) == set()
    assert model.matching_territories({"billingcountry": "Japan"}) == {ids["Japan"]}


def test_the_model_holds_its_territories_types_and_user_assignments(mirror):
    engine, schema, tables, wire = mirror
    with engine.connect() as c:
        model = TerritoryModel.load(c, schema)
    assert len(model.territories) == 18  # FY26's territories, not FY27's three
    assert {t.developer_name for t in model.types.values()} == {"Global", "Geo", "Country", "Segment"}
    uk_ent = model.by_developer_name("UK_Enterprise")
    assert model.types[uk_ent.type_id].priority == 4
    latam = model.by_developer_name("LATAM")
    assert len(model.users(latam.id)) == 1 and len(model.users(latam.id, active_only=False)) == 2
    assert len(model.user_assignments) == 17
    assert {r.developer_name for r in model.rules} == {r["DeveloperName"] for r in
                                                       wire["ObjectTerritory2AssignmentRule"]} - {"FY27_Enterprise"}


def _names(rows) -> list[tuple[str, int]]:
    return [(r.developername, r.depth) for r in rows]


def test_ancestors_and_descendants_in_one_query_each(mirror):
    engine, schema, tables, wire = mirror
    ids = _ids_by_developer_name(wire)
    with engine.connect() as c:
        # UK Enterprise is four levels deep: Global > EMEA > UK > UK Enterprise
        assert _names(ancestors(c, ids["UK_Enterprise"], schema=schema)) == [("UK", 1), ("EMEA", 2), ("Global", 3)]
        assert ancestors(c, ids["Global"], schema=schema) == []
        assert descendants(c, ids["UK_Enterprise"], schema=schema) == []
        assert _names(descendants(c, ids["EMEA"], schema=schema)) == [
            ("DACH", 1), ("France", 1), ("Nordics", 1), ("UK", 1), ("UK_Commercial", 2), ("UK_Enterprise", 2)]
        below_global = descendants(c, ids["Global"], schema=schema)
        assert len(below_global) == 17 and max(r.depth for r in below_global) == 3
        row = ancestors(c, ids["UK_Enterprise"], schema=schema)[0]
        assert (row.sfid, row.name, row.parentterritory2id) == (ids["UK"], "United Kingdom", ids["EMEA"])
        assert ancestors(c, "0MI000000000000AAA", schema=schema) == []  # unknown territory


def test_the_hierarchy_as_a_selectable_for_reports(mirror):
    engine, schema, tables, wire = mirror
    ids = _ids_by_developer_name(wire)
    fy26 = next(m["Id"] for m in wire["Territory2Model"] if m["State"] == "Active")
    tree = hierarchy_cte(schema=schema, model_id=fy26)
    with engine.connect() as c:
        rows = {r.sfid: r for r in c.execute(select(tree))}
        everything = c.execute(select(hierarchy_cte(schema=schema))).all()  # both models
    assert len(rows) == 18 and len(everything) == 21
    uk_ent = rows[ids["UK_Enterprise"]]
    assert uk_ent.depth == 4 and uk_ent.parentterritory2id == ids["UK"]
    assert uk_ent.path == "/".join(ids[n] for n in ("Global", "EMEA", "UK", "UK_Enterprise"))
    assert rows[ids["Global"]].depth == 1 and rows[ids["Global"]].path == ids["Global"]
