"""The shipped co-sell demo org and the seeded data generators, run against a small in-memory
stand-in for the emulator's record store."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Iterable

import pytest

from connector.emulator.datagen import GENERATORS, generate
from connector.emulator.ids import IdAllocator, is_valid
from connector.emulator.orgdef import FieldDef, OrgDef, load_org, object_from_describe

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=timezone.utc)
WIRE_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.000\+0000$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


class FakeStore:
    """The store interface generators use: seed records loaded with "@ref" resolved, dict tables."""

    def __init__(self, org: OrgDef) -> None:
        self.org = org
        self.current_user_id: str | None = None
        self.tables: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
        self._ids = IdAllocator()
        rows = [(name, self.new_id(name), row) for name, seeded in org.seed.items() for row in seeded]
        refs = {"@" + row["_ref"]: rid for _name, rid, row in rows if "_ref" in row}
        for name, rid, row in rows:
            self.tables[name][rid] = {"Id": rid, **{k: refs.get(v, v) if isinstance(v, str) else v
                                                    for k, v in row.items() if k != "_ref"}}
        # The real store seeds the RecordType rows behind declared record types.
        for obj in org.objects:
            for rt in obj.record_types:
                if rt.record_type_id:
                    self.tables["RecordType"][rt.record_type_id] = {"Id": rt.record_type_id,
                                                                    "DeveloperName": rt.developer_name,
                                                                    "SobjectType": obj.name}

    def now(self) -> datetime:
        return NOW

    def now_wire(self) -> str:
        return NOW.strftime("%Y-%m-%dT%H:%M:%S.000+0000")

    def new_id(self, object_name: str) -> str:
        return self._ids.next(self.org.get_object(object_name).key_prefix)

    def bulk_load(self, object_name: str, records: Iterable[dict[str, Any]]) -> int:
        table = self.tables[object_name]
        count = 0
        for record in records:
            table[record["Id"]] = record
            count += 1
        return count

    def ids(self, object_name: str) -> list[str]:
        return list(self.tables.get(object_name, {}))

    def find(self, object_name: str, field: str, value: Any) -> list[dict[str, Any]]:
        return [r for r in self.tables.get(object_name, {}).values() if r.get(field) == value]

    def rows(self, object_name: str) -> list[dict[str, Any]]:
        return list(self.tables.get(object_name, {}).values())


@pytest.fixture(scope="module")
def demo_org() -> OrgDef:
    return load_org("cosell_demo")


@pytest.fixture(scope="module")
def demo(demo_org: OrgDef) -> tuple[FakeStore, dict[str, int]]:
    store = FakeStore(demo_org)
    return store, generate(store, size=400, seed=7)


def _fits(f: FieldDef, value: Any) -> str | None:
    """Why `value` cannot be stored in field `f`, or None when it can."""
    t = f.type
    if t in ("string", "textarea", "email", "phone", "url", "picklist", "multipicklist", "combobox"):
        if not isinstance(value, str) or len(value) > f.length:
            return f"{value!r} is not text of at most {f.length}"
    if t == "picklist" and f.picklist and value not in f.active_values():
        return f"{value!r} is not an active value"
    if t == "multipicklist" and not set(value.split(";")) <= set(f.active_values()):
        return f"{value!r} has values that are not active"
    if t == "email" and not re.match(r"^[^@\s]+@[^@\s]+\.[a-z]+$", value):
        return f"{value!r} is not an email address"
    if t == "boolean" and not isinstance(value, bool):
        return f"{value!r} is not a boolean"
    if t == "int" and (not isinstance(value, int) or isinstance(value, bool) or abs(value) >= 10 ** f.digits):
        return f"{value!r} is not an int of {f.digits} digits"
    if t in ("double", "currency", "percent"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return f"{value!r} is not a number"
        exact = Decimal(str(value))
        if exact != exact.quantize(Decimal(1).scaleb(-f.scale)) or abs(exact) >= 10 ** (f.precision - f.scale):
            return f"{value!r} does not fit precision {f.precision}, scale {f.scale}"
    if t == "date":
        date.fromisoformat(value)
    if t == "datetime" and not WIRE_DATETIME.match(value):
        return f"{value!r} is not a wire datetime"
    if t == "reference" and not is_valid(value):
        return f"{value!r} is not a record Id"
    return None


def _problems(org: OrgDef, store: FakeStore, objects: Iterable[str]) -> list[str]:
    problems = []
    for name in objects:
        obj = org.get_object(name)
        required = [f.name for f in obj.fields
                    if not f.nillable and f.createable and not f.defaulted_on_create and f.type != "boolean"]
        for record in store.rows(name):
            problems += [f"{name} {record['Id']} lacks required {r}" for r in required if record.get(r) is None]
            for key, value in record.items():
                f = obj.field(key)
                if f is None:
                    problems.append(f"{name} {record['Id']}: unknown field {key}")
                elif value is not None and (why := _fits(f, value)):
                    problems.append(f"{name}.{key} {record['Id']}: {why}")
    return problems


# -- the demo org definition ------------------------------------------------------------------------

@pytest.mark.parametrize("object_name, field_name, spec", [
    ("Opportunity", "Amount", {"type": "currency", "precision": 18, "scale": 2}),
    ("Opportunity", "Probability", {"type": "percent", "precision": 3, "scale": 0}),
    ("Opportunity", "Name", {"type": "string", "length": 120, "nillable": False, "name_field": True}),
    ("Opportunity", "CloseDate", {"type": "date", "nillable": False}),
    ("Opportunity", "IsWon", {"type": "boolean", "createable": False, "updateable": False}),
    ("Opportunity", "Territory2Id", {"type": "reference", "reference_to": ["Territory2"],
                                     "relationship_name": "Territory2"}),
    ("Opportunity", "Portal_Id__c", {"type": "string", "length": 36, "external_id": True, "unique": True,
                                     "case_sensitive": False, "id_lookup": True}),
    ("Opportunity", "Net_Received_Amount__c", {"type": "currency", "precision": 18, "scale": 2}),
    ("Account", "Name", {"type": "string", "length": 255, "nillable": False, "name_field": True}),
    ("Account", "AnnualRevenue", {"type": "currency", "precision": 18, "scale": 0}),
    ("Account", "NumberOfEmployees", {"type": "int", "digits": 8}),
    ("Account", "BillingAddress", {"type": "address", "createable": False}),
    ("Account", "BillingStreet", {"type": "textarea", "length": 255, "compound_field_name": "BillingAddress"}),
    ("Account", "BillingCity", {"type": "string", "length": 40, "compound_field_name": "BillingAddress"}),
    ("Account", "BillingLatitude", {"type": "double", "precision": 18, "scale": 15,
                                    "compound_field_name": "BillingAddress"}),
    ("Account", "ParentId", {"type": "reference", "reference_to": ["Account"], "relationship_name": "Parent"}),
    ("Account", "Description", {"type": "textarea", "length": 32000}),
    ("Account", "Portal_Id__c", {"type": "string", "length": 36, "external_id": True, "unique": True}),
    ("User", "Username", {"type": "string", "length": 80, "unique": True, "nillable": False}),
    ("User", "LastName", {"type": "string", "nillable": False}),
    ("Co_Sell_Participant__c", "Opportunity__c", {"type": "reference", "reference_to": ["Opportunity"],
                                                  "relationship_name": "Opportunity__r", "master_detail": True,
                                                  "nillable": False}),
    ("Co_Sell_Participant__c", "Name", {"auto_number": True, "name_field": True, "createable": False}),
    ("Co_Sell_Participant__c", "Split_Percent__c", {"type": "percent", "precision": 5, "scale": 2}),
    ("Deal_Registration__c", "Submitted_At__c", {"type": "datetime"}),
    ("Deal_Registration__c", "Expiry_Date__c", {"type": "date"}),
    ("CurrencyType", "ConversionRate", {"type": "double", "precision": 18, "scale": 6}),
    ("DatedConversionRate", "NextStartDate", {"type": "date", "createable": False, "updateable": False}),
    ("Territory2", "ParentTerritory2Id", {"type": "reference", "reference_to": ["Territory2"],
                                          "relationship_name": "ParentTerritory2"}),
    ("ObjectTerritory2AssignmentRuleItem", "RuleId", {"reference_to": ["ObjectTerritory2AssignmentRule"],
                                                      "relationship_name": "Rule"}),
    ("OpportunitySplit", "OpportunityId", {"master_detail": True, "reference_to": ["Opportunity"]}),
    ("OpportunitySplit", "SplitPercentage", {"type": "percent", "precision": 5, "scale": 2}),
    ("OpportunitySplit", "SplitAmount", {"type": "currency", "createable": False, "updateable": False}),
])
def test_demo_org_fields_match_real_describe(demo_org: OrgDef, object_name: str, field_name: str,
                                             spec: dict[str, Any]) -> None:
    field = demo_org.get_object(object_name).field(field_name)
    assert field is not None, f"{object_name}.{field_name} missing"
    assert {k: getattr(field, k) for k in spec} == spec


@pytest.mark.parametrize("object_name, field_name, values, restricted", [
    ("Opportunity", "StageName", ["Prospecting", "Qualification", "Needs Analysis", "Value Proposition",
                                  "Id. Decision Makers", "Perception Analysis", "Proposal/Price Quote",
                                  "Negotiation/Review", "Closed Won", "Closed Lost"], True),
    ("Opportunity", "Co_Sell_Motion__c", ["Hyperscaler", "Technology Alliance", "System Integrator",
                                          "Partner-to-Partner"], True),
    ("Opportunity", "Cloud_Marketplace__c", ["AWS Marketplace", "Azure Marketplace", "Google Cloud Marketplace",
                                             "None"], False),
    ("Opportunity", "Reconciliation_Status__c", ["Not Applicable", "Matched", "Partly Paid", "Amount Mismatch",
                                                 "Missing Payout"], False),
    ("Account", "Type", ["Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                         "Installation Partner", "Technology Partner", "Other"], False),
    ("Account", "Partner_Type__c", ["Cloud Provider", "System Integrator", "Reseller", "Distributor",
                                    "Technology Alliance", "Referral Partner"], False),
    ("Co_Sell_Participant__c", "Role__c", ["Vendor", "Cloud Provider", "System Integrator", "Reseller",
                                           "Distributor", "Referral Partner"], False),
    ("Co_Sell_Participant__c", "Attribution__c", ["Sourced", "Influenced", "Delivered"], True),
    ("Co_Sell_Participant__c", "Split_Type__c", ["Revenue", "Influence"], True),
    ("Deal_Registration__c", "Status__c", ["Draft", "Submitted", "Under Review", "Approved", "Rejected",
                                           "Expired", "Withdrawn"], True),
    ("ObjectTerritory2Association", "AssociationCause", ["Territory2AssociationManual",
                                                         "Territory2AssociationRules"], True),
])
def test_demo_org_picklists(demo_org: OrgDef, object_name: str, field_name: str, values: list[str],
                            restricted: bool) -> None:
    field = demo_org.get_object(object_name).field(field_name)
    assert field.type == "picklist"
    assert field.active_values() == values
    assert field.restricted is restricted


def test_demo_org_shape(demo_org: OrgDef) -> None:
    prefixes = {o.name: o.key_prefix for o in demo_org.objects}
    assert {prefixes[n] for n in ("User", "Account", "Opportunity", "Group")} == {"005", "001", "006", "00G"}
    assert len(set(prefixes.values())) == len(prefixes)
    assert demo_org.generator == "cosell_demo" and demo_org.api_version == "59.0"
    assert demo_org.features.territory_management
    mc = demo_org.features.multi_currency
    assert mc.corporate == "USD"
    assert {c.iso_code: c.decimal_places for c in mc.currencies}["JPY"] == 0
    for iso in ("EUR", "GBP", "JPY", "INR"):
        rates = [r for r in mc.dated_rates if r.iso_code == iso]
        assert len(rates) >= 8 and len({r.rate for r in rates}) == len(rates)
    # server-maintained fields come from the loader, shaped as on the real objects
    assert demo_org.get_object("Account").field("CurrencyIsoCode").restricted
    assert demo_org.get_object("Opportunity").field("RecordTypeId") is not None
    assert demo_org.get_object("Territory2").field("IsDeleted") is None
    assert demo_org.get_object("Territory2").field("CreatedDate") is None
    assert demo_org.get_object("CurrencyType").field("IsDeleted") is None
    assert demo_org.get_object("ObjectTerritory2Association").field("IsDeleted") is not None
    assert demo_org.get_object("Co_Sell_Participant__c").field("OwnerId") is None
    assert demo_org.get_object("Deal_Registration__c").field("OwnerId").reference_to == ["Group", "User"]
    rules = {r.name: r for o in demo_org.objects for r in o.validation_rules}
    assert rules["Rejection_Reason_Required"].condition == "Status__c = 'Rejected' AND Rejection_Reason__c = null"
    assert rules["Split_Percent_Range"].field == "Split_Percent__c"
    assert "CurrencyType" not in demo_org.seed and "DatedConversionRate" not in demo_org.seed


def test_demo_seed_territory_hierarchy_and_rules(demo_org: OrgDef) -> None:
    store = FakeStore(demo_org)
    territories = {t["Id"]: t for t in store.rows("Territory2")}

    def depth(t: dict[str, Any]) -> int:
        parent = t.get("ParentTerritory2Id")
        return 1 + (depth(territories[parent]) if parent else 0)

    uk_enterprise = store.find("Territory2", "DeveloperName", "UK_Enterprise")[0]
    assert depth(uk_enterprise) == 4
    assert [m["State"] for m in store.rows("Territory2Model")].count("Active") == 1
    filters = {r["BooleanFilter"] for r in store.rows("ObjectTerritory2AssignmentRule") if r.get("BooleanFilter")}
    assert {"1 AND 2", "1 OR 2 OR 3"} <= filters
    assert store.find("User", "Username", "integration@cosell-demo.example")
    assert len(store.find("Account", "Is_Partner__c", True)) >= 8
    assert {t["IsTotalValidated"] for t in store.rows("OpportunitySplitType")} == {True, False}
    assert _problems(demo_org, store, demo_org.seed) == []


# -- the co-sell demo generator ---------------------------------------------------------------------

def test_demo_generation_counts(demo_org: OrgDef, demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, counts = demo
    assert counts["Opportunity"] == 400 and counts["Account"] == 100
    per_opp = defaultdict(int)
    for p in store.rows("Co_Sell_Participant__c"):
        per_opp[p["Opportunity__c"]] += 1
    assert set(per_opp.values()) <= {1, 2, 3, 4} and len(per_opp) == 400
    assert 120 < counts["Deal_Registration__c"] < 280
    assert counts["OpportunitySplit"] > 0 and counts["ObjectTerritory2Association"] > 0
    assert counts == {name: len(store.rows(name)) - len(demo_org.seed.get(name, [])) for name in counts}


def test_demo_generation_is_deterministic(demo_org: OrgDef, demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, _ = demo
    again = FakeStore(demo_org)
    generate(again, size=400, seed=7)
    assert again.tables == store.tables
    other = FakeStore(demo_org)
    generate(other, size=400, seed=8)
    assert other.tables["Opportunity"] != store.tables["Opportunity"]


def test_revenue_splits_total_exactly_100(demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, _ = demo
    revenue: dict[str, Decimal] = defaultdict(Decimal)
    influence: dict[str, Decimal] = defaultdict(Decimal)
    for p in store.rows("Co_Sell_Participant__c"):
        target = revenue if p["Split_Type__c"] == "Revenue" else influence
        target[p["Opportunity__c"]] += Decimal(str(p["Split_Percent__c"]))
    assert len(revenue) == 400 and set(revenue.values()) == {Decimal(100)}
    assert any(total != 100 for total in influence.values())
    splits: dict[str, Decimal] = defaultdict(Decimal)
    revenue_type = store.find("OpportunitySplitType", "DeveloperName", "Revenue")[0]["Id"]
    for s in store.find("OpportunitySplit", "SplitTypeId", revenue_type):
        splits[s["OpportunityId"]] += Decimal(str(s["SplitPercentage"]))
    assert splits and set(splits.values()) == {Decimal(100)}


def test_every_reference_points_to_an_existing_record(demo_org: OrgDef,
                                                      demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, _ = demo
    dangling = []
    for obj in demo_org.objects:
        for f in obj.fields:
            if f.type != "reference":
                continue
            for record in store.rows(obj.name):
                value = record.get(f.name)
                if value is not None and not any(value in store.tables.get(t, {}) for t in f.reference_to):
                    dangling.append(f"{obj.name}.{f.name} = {value}")
    assert dangling == []


def test_generated_records_fit_their_fields(demo_org: OrgDef, demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, counts = demo
    assert _problems(demo_org, store, counts) == []


def test_registration_status_matches_timestamps(demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, _ = demo
    now, today = store.now_wire(), NOW.date().isoformat()
    statuses = set()
    for r in store.rows("Deal_Registration__c"):
        status, submitted, decided = r["Status__c"], r.get("Submitted_At__c"), r.get("Decided_At__c")
        statuses.add(status)
        assert (submitted is None) == (status == "Draft"), r
        assert (decided is not None) == (status in ("Approved", "Rejected", "Expired")), r
        assert (r.get("Rejection_Reason__c") is not None) == (status == "Rejected"), r
        if decided:
            assert submitted <= decided <= now
        if submitted:
            assert r["CreatedDate"] <= submitted <= now
        if status == "Approved":
            assert r["Expiry_Date__c"] >= today
        if status == "Expired":
            assert r["Expiry_Date__c"] < today
        opp = store.tables["Opportunity"][r["Opportunity__c"]]
        assert r["End_Customer_Account__c"] == opp["AccountId"]
        assert r.get("CurrencyIsoCode") == opp["CurrencyIsoCode"]
    assert statuses >= {"Draft", "Submitted", "Approved", "Rejected", "Expired"}


def test_demo_data_satisfies_the_org_validation_rules(demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, _ = demo
    for opp in store.rows("Opportunity"):
        if opp["StageName"] == "Closed Won":
            assert opp.get("Amount") is not None and opp["IsWon"] and opp["IsClosed"]
            assert opp["CloseDate"] <= NOW.date().isoformat()
            if opp.get("Cloud_Marketplace__c") == "AWS Marketplace":
                assert opp["Marketplace_Offer_Id__c"].startswith("offer-")
    assert all(0 <= p["Split_Percent__c"] <= 100 for p in store.rows("Co_Sell_Participant__c"))
    years = {opp["CloseDate"][:4] for opp in store.rows("Opportunity")}
    assert {"2024", "2025", "2026"} <= years
    assert len({opp["CurrencyIsoCode"] for opp in store.rows("Opportunity")}) >= 4


def test_portal_ids_are_unique_uuids_on_about_half(demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, counts = demo
    for name in ("Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c"):
        ids = [r["Portal_Id__c"] for r in store.rows(name) if r.get("Portal_Id__c")]
        assert 0.3 < len(ids) / counts[name] < 0.7
        assert len(set(ids)) == len(ids) and all(UUID.match(i) for i in ids)


def test_accounts_follow_the_territory_rules(demo: tuple[FakeStore, dict[str, int]]) -> None:
    store, _ = demo
    territory_by_name = {t["DeveloperName"]: t["Id"] for t in store.rows("Territory2")}
    assigned = defaultdict(set)
    for link in store.rows("ObjectTerritory2Association"):
        assigned[link["ObjectId"]].add(link["Territory2Id"])
    checked = 0
    for account in store.rows("Account"):
        if account.get("Is_Partner__c") or account.get("BillingCountry") != "United Kingdom":
            continue
        revenue = account.get("AnnualRevenue")
        expected = "UK_Enterprise" if revenue is not None and revenue >= 100_000_000 else "UK_Commercial"
        assert assigned[account["Id"]] == {territory_by_name[expected]}
        checked += 1
    assert checked
    for opp in store.rows("Opportunity"):
        links = assigned.get(opp["AccountId"], set())
        assert (opp.get("Territory2Id") in links) if links else opp.get("Territory2Id") is None


def test_unknown_generator_names_the_valid_ones(demo_org: OrgDef) -> None:
    store = FakeStore(demo_org.model_copy(update={"generator": "nope"}))
    with pytest.raises(ValueError, match="cosell_demo, generic"):
        generate(store, size=1)
    assert set(GENERATORS) == {"cosell_demo", "generic"}


# -- the generic generator --------------------------------------------------------------------------

def _describe_field(name: str, type_: str, **extra: Any) -> dict[str, Any]:
    values = extra.pop("values", [])
    return {"name": name, "type": type_, "label": name, "nillable": True, "createable": True,
            "updateable": True, "defaultedOnCreate": False, "custom": name.endswith("__c"),
            "referenceTo": [], "relationshipName": None, "cascadeDelete": False,
            "picklistValues": [{"value": v, "label": v, "active": active, "defaultValue": False}
                               for v, active in values], **extra}


def _described_org() -> OrgDef:
    project = object_from_describe({
        "name": "Project__c", "keyPrefix": "a01", "createable": True, "queryable": True, "custom": True,
        "fields": [
            _describe_field("Id", "id", createable=False, nillable=False, length=18),
            _describe_field("Name", "string", length=80, nillable=False, nameField=True),
            _describe_field("Code__c", "string", length=8, unique=True, externalId=True),
            _describe_field("Status__c", "picklist", length=255, restrictedPicklist=True, nillable=False,
                            values=[("Open", True), ("Closed", True), ("Legacy", False)]),
            _describe_field("Tags__c", "multipicklist", length=4099, values=[("a", True), ("b", True), ("c", True)]),
            _describe_field("Budget__c", "currency", precision=5, scale=2),
            _describe_field("Share__c", "percent", precision=3, scale=0),
            _describe_field("Headcount__c", "int", digits=3),
            _describe_field("Active__c", "boolean", nillable=False, defaultedOnCreate=True),
            _describe_field("Contact_Email__c", "email", length=80),
            _describe_field("Kickoff__c", "date"),
            _describe_field("Seen_At__c", "datetime"),
            _describe_field("Score__c", "double", precision=18, scale=2, calculated=True, createable=False),
            _describe_field("Number__c", "string", length=30, autoNumber=True, createable=False),
        ]})
    task = object_from_describe({
        "name": "Task__c", "keyPrefix": "a02", "createable": True, "queryable": True, "custom": True,
        "fields": [
            _describe_field("Id", "id", createable=False, nillable=False, length=18),
            _describe_field("Name", "string", length=20, nillable=False, nameField=True),
            _describe_field("Project__c", "reference", referenceTo=["Project__c"], relationshipName="Project__r",
                            nillable=False, cascadeDelete=True),
            _describe_field("Blocked_By__c", "reference", referenceTo=["Task__c"], relationshipName="Blocked_By__r"),
            _describe_field("Notes__c", "textarea", length=100),
        ]})
    orphan = object_from_describe({
        "name": "Orphan__c", "keyPrefix": "a03", "createable": True, "queryable": True, "custom": True,
        "fields": [_describe_field("Id", "id", createable=False, nillable=False, length=18),
                   _describe_field("Owner__c", "reference", referenceTo=["Missing__c"], nillable=False)]})
    # children listed first: the generator must still create parents before them
    return OrgDef(name="described", objects=[task, orphan, project], generator="generic")


def test_generic_generator_respects_the_describe() -> None:
    org = _described_org()
    store = FakeStore(org)
    counts = generate(store, size=300, seed=3)
    assert counts == {"Project__c": 300, "Task__c": 300, "Orphan__c": 0}
    assert _problems(org, store, ["Project__c", "Task__c"]) == []
    projects = store.rows("Project__c")
    codes = [p["Code__c"] for p in projects if "Code__c" in p]
    assert codes and len({c.lower() for c in codes}) == len(codes)
    assert {p["Status__c"] for p in projects} == {"Open", "Closed"}
    assert not any("Score__c" in p or "Number__c" in p for p in projects)
    assert all(p["Budget__c"] < 1000 for p in projects if "Budget__c" in p)
    tasks = store.rows("Task__c")
    assert all(t["Project__c"] in store.tables["Project__c"] for t in tasks)
    blocked = [t["Blocked_By__c"] for t in tasks if "Blocked_By__c" in t]
    assert blocked and all(b in store.tables["Task__c"] for b in blocked)
    again = FakeStore(org)
    generate(again, size=300, seed=3)
    assert again.tables == store.tables


def test_generic_generator_on_the_demo_org_skips_currency_rows(demo_org: OrgDef) -> None:
    store = FakeStore(demo_org.model_copy(update={"generator": "generic"}))
    counts = generate(store, size=5, seed=1)
    assert "CurrencyType" not in counts and "DatedConversionRate" not in counts
    assert "RecordType" not in counts  # the declared record types are seeded by the store, not generated
    assert counts["Opportunity"] == counts["Co_Sell_Participant__c"] == 5
    assert _problems(demo_org, store, counts) == []
