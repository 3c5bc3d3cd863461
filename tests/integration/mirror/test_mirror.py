"""The schema mirror against the emulator over HTTPS, on SQLite and PostgreSQL:
tables of the right types, exact values, describe economy, and drift that keeps
every row (new field, removed field, wider field, new picklist value, objects
added to and removed from the mapping)."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest
import yaml
from sqlalchemy import Boolean, Date, Integer, Numeric, String, inspect, select, text

from connector.mapping import load_mapping
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.types import ExactDecimal, UtcDateTime
from tests.conftest import mapping_for, settings_for

UTC = dt.timezone.utc


def _mirror(emulator, database, mapping=None) -> SchemaMirror:
    client = SalesforceClient(settings_for(emulator))
    return SchemaMirror(client, database.engine, mapping or mapping_for(database))


def _rows(database, name: str) -> list:
    """Rows through the mirror's own table definition (exact Decimal, aware datetimes)."""
    table = _mirror_for_reading(database).table(name)
    with database.engine.connect() as conn:
        return conn.execute(select(table)).mappings().all()


def _mirror_for_reading(database) -> SchemaMirror:
    return SchemaMirror(None, database.engine, mapping_for(database))


def _mapping_file(tmp_path, edit) -> str:
    from connector.mapping import DEFAULT_MAPPING_PATH

    data = yaml.safe_load(DEFAULT_MAPPING_PATH.read_text())
    edit(data)
    path = tmp_path / "mapping.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_every_mapped_field_has_a_column_of_the_right_type(emulator, database):
    mirror = _mirror(emulator, database)
    plan = mirror.plan()
    assert plan.problems == []
    assert {c.kind for c in plan.changes} == {"create_table"}
    mirror.apply(plan)
    inspector = inspect(database.engine)
    expected_family = {"currency": ExactDecimal, "percent": ExactDecimal, "double": ExactDecimal,
                       "date": Date, "datetime": UtcDateTime, "boolean": Boolean, "int": Integer,
                       "string": String, "picklist": String, "reference": String, "id": String}
    for obj in plan.objects:
        columns = {c["name"]: c for c in inspector.get_columns(obj.table, schema=database.schema)}
        assert {"_id", "_uuid", "sfid"} <= columns.keys()
        declared = mirror.tables(plan)[obj.name]
        for f in obj.fields:
            assert f.column in columns, f"{obj.name}.{f.name} has no column"
            family = expected_family.get(f.sf_type)
            if family is not None:
                assert isinstance(declared.c[f.column].type, family), (obj.name, f.name)
            if database.name == "postgresql" and f.sf_type == "currency":
                reflected = columns[f.column]["type"]
                assert isinstance(reflected, Numeric) and (reflected.precision, reflected.scale) == (
                    f.precision, f.scale), "money is NUMERIC(p, s) from describe"
        indexes = {tuple(i["column_names"]): bool(i["unique"]) for i in inspector.get_indexes(obj.table, schema=database.schema)}
        for f in obj.fields:
            if f.external_id:
                assert indexes.get((f.column,)) is True, f"{obj.name}.{f.name} external ID is uniquely indexed"
            elif f.sf_type == "reference" and f.name != "Id":
                assert (f.column,) in indexes, f"{obj.name}.{f.name} reference is indexed"
    opportunity = {f.name: f for f in next(o for o in plan.objects if o.name == "Opportunity").fields}
    assert {"Amount", "CloseDate", "Co_Sell_Motion__c", "Portal_Id__c", "CurrencyIsoCode"} <= opportunity.keys()
    account = {f.name for f in next(o for o in plan.objects if o.name == "Account").fields}
    assert {"BillingStreet", "BillingCity", "BillingCountry"} <= account and "BillingAddress" not in account
    assert "BillingLatitude" not in account, "excluded by the shipped mapping"


def test_values_of_every_type_are_read_back_exactly(emulator, database):
    emulator.add_field("Opportunity", "Tags__c", "multipicklist", values=["AI", "Data", "Security"])
    emulator.add_field("Opportunity", "Kickoff__c", "datetime")
    emulator.add_field("Opportunity", "Seats__c", "int")
    emulator.add_field("Opportunity", "Discount__c", "double", precision=18, scale=4)
    emulator.add_field("Opportunity", "Strategic__c", "boolean")
    account_id = emulator.create("Account", {"Name": "Exact AG", "BillingStreet": "Hauptstr. 1\n2. OG",
                                             "BillingCity": "Zürich", "BillingCountry": "Switzerland",
                                             "AnnualRevenue": 987654321012})
    opp_id = emulator.create("Opportunity", {
        "Name": "Exact deal", "StageName": "Prospecting", "CloseDate": "2026-02-28", "AccountId": account_id,
        "Amount": 1234567.89, "Probability": 35, "CurrencyIsoCode": "EUR", "Tags__c": "AI;Security",
        "Kickoff__c": "2026-01-15T09:30:45.000+0000", "Seats__c": 250, "Discount__c": 12.3456,
        "Strategic__c": True})
    mirror = _mirror(emulator, database)
    plan = mirror.plan()
    mirror.apply(plan)
    counts = mirror.load(plan, ["Account", "Opportunity"])
    assert counts["Opportunity"] == emulator.store.count("Opportunity")
    row = next(r for r in _rows(database, "opportunity") if r["sfid"] == opp_id)
    assert row["amount"] == Decimal("1234567.89") and isinstance(row["amount"], Decimal)
    assert row["probability"] == Decimal("35")
    assert row["closedate"] == dt.date(2026, 2, 28)
    assert row["kickoff__c"] == dt.datetime(2026, 1, 15, 9, 30, 45, tzinfo=UTC)
    assert row["tags__c"] == "AI;Security"
    assert row["seats__c"] == 250 and row["discount__c"] == Decimal("12.3456")
    assert row["strategic__c"] is True and row["currencyisocode"] == "EUR"
    assert row["systemmodstamp"].tzinfo is not None
    account = next(r for r in _rows(database, "account") if r["sfid"] == account_id)
    assert (account["billingstreet"], account["billingcity"]) == ("Hauptstr. 1\n2. OG", "Zürich")
    assert account["annualrevenue"] == Decimal("987654321012")
    assert len(row["_uuid"]) == 36, "every row gets a UUID for the portal"


def test_mirroring_k_objects_costs_ceil_k_over_25_describe_calls(emulator, database):
    mapping = mapping_for(database)
    mirror = _mirror(emulator, database, mapping)
    mirror.client.login()
    emulator.calls.reset()
    plan = mirror.plan()
    mirror.apply(plan)
    k = len(mapping.objects)
    assert emulator.calls.total() == math.ceil(k / 25)
    emulator.calls.reset()
    emulator.advance_clock(seconds=2)
    again = mirror.plan()
    assert again.changes == [] and again.describes == {}, "an unchanged org answers 304 for every object"
    assert emulator.calls.total() == math.ceil(k / 25)


def test_drift_is_applied_additively_and_keeps_data(emulator, database):
    mirror = _mirror(emulator, database)
    plan = mirror.plan()
    mirror.apply(plan)
    mirror.load(plan, ["Opportunity"])
    before = {r["sfid"]: r["name"] for r in _rows(database, "opportunity")}

    emulator.advance_clock(seconds=2)
    emulator.add_field("Opportunity", "Region__c", "picklist", values=["EMEA", "AMER"])
    emulator.change_field("Opportunity", "NextStep", length=500)
    emulator.change_field("Opportunity", "Amount", precision=20, scale=4)
    emulator.add_picklist_value("Opportunity", "Co_Sell_Motion__c", "Marketplace Private Offer")
    emulator.remove_field("Opportunity", "Description")
    plan = mirror.plan()
    kinds = {(c.kind, c.field_name) for c in plan.changes}
    assert {("add_column", "Region__c"), ("widen_column", "NextStep"), ("widen_column", "Amount"),
            ("picklist_values", "Co_Sell_Motion__c"), ("retire_column", "Description")} <= kinds
    mirror.apply(plan)
    rows = _rows(database, "opportunity")
    assert {r["sfid"]: r["name"] for r in rows} == before, "no row lost or changed"
    assert "description" in rows[0], "a retired column stays in place"
    assert "region__c" in rows[0]
    columns = {c["name"]: c["type"] for c in inspect(database.engine).get_columns("opportunity",
                                                                                   schema=database.schema)}
    if database.name == "postgresql":
        assert columns["nextstep"].length == 500
        assert (columns["amount"].precision, columns["amount"].scale) == (20, 4)
    with database.engine.connect() as conn:
        picklists = conn.execute(text(
            "SELECT value FROM " + (f'"{database.schema}".' if database.schema else "") + "_cosell_picklist_values "
            "WHERE object_name = 'Opportunity' AND field_name = 'Co_Sell_Motion__c'")).scalars().all()
        retired = conn.execute(text(
            "SELECT retired FROM " + (f'"{database.schema}".' if database.schema else "") + "_cosell_fields "
            "WHERE object_name = 'Opportunity' AND field_name = 'Description'")).scalar_one()
    assert "Marketplace Private Offer" in picklists and retired in (True, 1)
    emulator.update("Opportunity", next(iter(before)), {"Region__c": "EMEA"})
    mirror.load(mirror.plan(), ["Opportunity"])
    assert {r["region__c"] for r in _rows(database, "opportunity")} >= {"EMEA"}, "new column backfilled"
    assert mirror.plan().pending == [], "applying twice changes nothing"

    dropped = mirror.plan(allow_drop=True)
    assert [(c.kind, c.field_name) for c in dropped.pending] == []  # already retired: nothing more to drop


def test_dropping_needs_the_explicit_flag(emulator, database):
    mirror = _mirror(emulator, database)
    mirror.apply(mirror.plan())
    emulator.advance_clock(seconds=2)
    emulator.remove_field("Opportunity", "NextStep")
    plan = mirror.plan(allow_drop=True)
    assert ("drop_column", "NextStep") in {(c.kind, c.field_name) for c in plan.changes}
    mirror.apply(plan)
    columns = {c["name"] for c in inspect(database.engine).get_columns("opportunity", schema=database.schema)}
    assert "nextstep" not in columns


def test_objects_added_to_and_removed_from_the_mapping(emulator, database, tmp_path):
    mirror = _mirror(emulator, database)
    plan = mirror.plan()
    mirror.apply(plan)
    mirror.load(plan, ["OpportunitySplit"])
    splits = len(_rows(database, "opportunitysplit"))

    def drop_splits(data):
        del data["objects"]["OpportunitySplit"]
    smaller = mapping_for(database, _mapping_file(tmp_path, drop_splits))
    plan = _mirror(emulator, database, smaller).plan()
    assert [(c.kind, c.object_name) for c in plan.changes] == [("retire_table", "OpportunitySplit")]
    _mirror(emulator, database, smaller).apply(plan)
    assert len(_rows(database, "opportunitysplit")) == splits, "a retired table keeps its rows"

    plan = mirror.plan()
    assert ("restore_table", "OpportunitySplit") in {(c.kind, c.object_name) for c in plan.changes}
    mirror.apply(plan)


def test_mapped_objects_and_fields_the_org_lacks_are_reported_and_skipped(emulator, database, tmp_path):
    def add_missing(data):
        data["objects"]["Nonexistent__c"] = {"direction": "read_only"}
        data["objects"]["User"] = {"direction": "read_only", "fields": {"include": ["Name", "Shoe_Size__c"]}}
    mapping = mapping_for(database, _mapping_file(tmp_path, add_missing))
    plan = _mirror(emulator, database, mapping).plan()
    messages = [str(p) for p in plan.problems]
    assert any(m.startswith("Nonexistent__c: is mapped but the org has no such object") for m in messages)
    assert any(m.startswith("User.Shoe_Size__c: is mapped but the org has no such field") for m in messages)
    assert "Nonexistent__c" not in {o.name for o in plan.objects}
    _mirror(emulator, database, mapping).apply(plan)


def test_a_single_currency_org_without_territories_mirrors_cleanly(database, tmp_path):
    """An org built from describe payloads that lack CurrencyIsoCode and the territory objects."""
    import json

    from connector.emulator import Emulator
    from tests.conftest import connect

    with Emulator("cosell_demo") as full:
        sf = connect(full)
        for name in ("Account", "Opportunity", "User"):
            body = getattr(sf, name).describe()
            body["fields"] = [f for f in body["fields"] if f["name"] != "CurrencyIsoCode"]
            (tmp_path / f"{name}.json").write_text(json.dumps(body))
    with Emulator(tmp_path, records=10) as single:
        mirror = _mirror(single, database)
        plan = mirror.plan()
        missing = {p.object_name for p in plan.problems if p.field_name is None}
        assert {"CurrencyType", "Territory2", "Deal_Registration__c"} <= missing
        mirror.apply(plan)
        counts = mirror.load(plan)
        assert counts["Opportunity"] == 10
        assert "currencyisocode" not in _rows(database, "opportunity")[0]


def test_an_org_with_hundreds_of_fields_per_object_mirrors(database, tmp_path):
    import json

    from connector.emulator import Emulator
    from tests.integration.emulator.test_describe_folder import _wide_object

    org_dir = tmp_path / "org"
    org_dir.mkdir()
    (org_dir / "Wide__c.json").write_text(json.dumps(_wide_object(450)))
    mapping_path = tmp_path / "wide.yaml"
    mapping_path.write_text("version: 1\nobjects:\n  Wide__c: {direction: read_only}\n")
    with Emulator(org_dir, records=25, seed=9) as org:
        mirror = _mirror(org, database, mapping_for(database, mapping_path))
        plan = mirror.plan()
        assert plan.problems == [] and len(plan.objects[0].fields) >= 450
        mirror.apply(plan)
        assert mirror.load(plan) == {"Wide__c": 25}
        rows = _rows(database, "wide__c")
        assert len(rows) == 25 and all(isinstance(r["f002__c"], (Decimal, type(None))) for r in rows)


def test_corporate_currency_views_survive_drift(emulator, database):
    """The views read the mirrored tables; widening a column they read must still apply (PostgreSQL
    refuses to retype a column under a view), and the views come back afterwards."""
    mirror = _mirror(emulator, database)
    plan = mirror.plan()
    mirror.apply(plan)
    mirror.load(plan)
    assert "opportunity_corporate" in mirror.create_views(plan)
    emulator.advance_clock(seconds=2)
    emulator.change_field("Opportunity", "Amount", precision=20, scale=2)
    plan = mirror.plan()
    mirror.apply(plan)
    views = mirror.create_views(plan)
    assert "opportunity_corporate" in views
    with database.engine.connect() as conn:
        qualified = f'"{database.schema}".opportunity_corporate' if database.schema else "opportunity_corporate"
        count = conn.execute(text(f"SELECT COUNT(*) FROM {qualified}")).scalar()
    assert count == emulator.store.count("Opportunity")
