"""Behaviour of the emulator's SOQL engine as a SOQL user would observe it: which records match,
in what order, how they are projected, and the exact Salesforce error messages."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.emulator.ids import make_id
from connector.emulator.soql import CompiledQuery, SoqlError, compile_query, parse

NOW = dt.datetime(2024, 5, 15, 12, 0, 0, tzinfo=dt.timezone.utc)  # a Wednesday
API = "60.0"


# --------------------------------------------------------------------------- fake schema

@dataclass
class Field:
    name: str
    type: str
    reference_to: list[str] = field(default_factory=list)
    relationship_name: str | None = None
    compound_field_name: str | None = None


class Obj:
    def __init__(self, name: str, fields: list[Field]) -> None:
        self.name = name
        self._fields = fields

    def field(self, name: str) -> Field | None:
        return next((f for f in self._fields if f.name.lower() == name.lower()), None)

    def relationship(self, name: str) -> Field | None:
        return next((f for f in self._fields
                     if f.relationship_name and f.relationship_name.lower() == name.lower()), None)

    @property
    def fields(self) -> list[Field]:
        return self._fields


class Schema:
    def __init__(self, *objects: Obj) -> None:
        self._objects = {o.name.lower(): o for o in objects}

    def get_object(self, name: str) -> Obj | None:
        return self._objects.get(name.lower())


def _common() -> list[Field]:
    return [Field("Id", "id"), Field("IsDeleted", "boolean"), Field("Name", "string"),
            Field("CreatedDate", "datetime"), Field("SystemModstamp", "datetime")]


def _address(prefix: str) -> list[Field]:
    compound = f"{prefix}Address"
    parts = [Field(f"{prefix}Street", "textarea"), Field(f"{prefix}City", "string"),
             Field(f"{prefix}State", "string"), Field(f"{prefix}PostalCode", "string"),
             Field(f"{prefix}Country", "string"), Field(f"{prefix}Latitude", "double"),
             Field(f"{prefix}Longitude", "double"), Field(f"{prefix}GeocodeAccuracy", "picklist")]
    for part in parts:
        part.compound_field_name = compound
    return parts + [Field(compound, "address")]


SCHEMA = Schema(
    Obj("Account", _common() + [
        Field("Industry", "picklist"),
        *_address("Billing"),
        Field("AnnualRevenue", "currency"),
        Field("OwnerId", "reference", ["Group", "User"], "Owner"),
        Field("ParentId", "reference", ["Account"], "Parent"),
        Field("Site__Latitude__s", "double", compound_field_name="Site__c"),
        Field("Site__Longitude__s", "double", compound_field_name="Site__c"),
        Field("Site__c", "location"),
    ]),
    Obj("User", _common() + [Field("ManagerId", "reference", ["User"], "Manager"), Field("Alias", "string")]),
    Obj("Group", _common()),
    Obj("Opportunity", _common() + [
        Field("AccountId", "reference", ["Account"], "Account"),
        Field("Partner_Account__c", "reference", ["Account"], "Partner_Account__r"),
        Field("Amount", "currency"),
        Field("CloseDate", "date"),
        Field("StageName", "picklist"),
        Field("Tags__c", "multipicklist"),
        Field("IsPrivate", "boolean"),
        Field("NumberOfUnits__c", "int"),
    ]),
)

USER_BOSS = make_id("005", 1)
USER_ANN = make_id("005", 2)
GROUP_Q = make_id("00G", 1)
ACME = make_id("001", 1)
GLOBEX = make_id("001", 2)
GHOST = make_id("001", 99)  # referenced but never stored

STORE: dict[str, dict[str, dict]] = {
    "User": {
        USER_BOSS: {"Id": USER_BOSS, "Name": "Big Boss", "IsDeleted": False},
        USER_ANN: {"Id": USER_ANN, "Name": "Ann", "ManagerId": USER_BOSS, "IsDeleted": False},
    },
    "Group": {GROUP_Q: {"Id": GROUP_Q, "Name": "Sales Queue", "IsDeleted": False}},
    "Account": {
        ACME: {"Id": ACME, "Name": "Acme", "Industry": "Energy", "OwnerId": USER_ANN, "AnnualRevenue": 1000.0,
               "BillingStreet": "1 Main St", "BillingCity": "Springfield", "BillingPostalCode": "12345",
               "BillingCountry": "US", "BillingLatitude": 40.5, "Site__Latitude__s": 1.5,
               "Site__Longitude__s": -2.25, "IsDeleted": False},
        GLOBEX: {"Id": GLOBEX, "Name": "Globex", "OwnerId": GROUP_Q, "ParentId": ACME, "IsDeleted": False},
    },
}


def fetch(object_name: str, record_id: str) -> dict | None:
    return STORE.get(object_name, {}).get(record_id)


def opp(n: int, **values) -> dict:
    return {"Id": make_id("006", n), "IsDeleted": False, **values}


OPPS = [
    opp(1, Name="Big Deal", AccountId=ACME, Amount=5000, CloseDate="2024-05-15", StageName="Closed Won",
        Tags__c="Red;Green", IsPrivate=True, SystemModstamp="2024-05-15T08:00:00.000+0000", NumberOfUnits__c=3),
    opp(2, Name="small deal", AccountId=GLOBEX, Amount=250.5, CloseDate="2024-05-14", StageName="Prospecting",
        Tags__c="Blue", IsPrivate=False, SystemModstamp="2024-05-14T23:59:59.000+0000"),
    opp(3, Name="Orphan", AccountId=GHOST, Amount=None, CloseDate="2024-06-01", StageName="closed won",
        SystemModstamp="2024-01-01T00:00:00.000+0000"),
    opp(4, Name="No Account", CloseDate="2023-12-31", Tags__c="green;Blue;Red",
        SystemModstamp="2023-12-31T23:00:00.000+0000"),
    opp(5, Name="100% sure_thing", AccountId=ACME, Amount=-10, StageName="Negotiation", IsPrivate=False),
]


def cq(text: str, **kw) -> CompiledQuery:
    return compile_query(text, SCHEMA, NOW, **kw)


def names(where: str, records: list[dict] = OPPS) -> list[str]:
    q = cq(f"SELECT Name FROM Opportunity WHERE {where}")
    return [r["Name"] for r in records if q.matches(r, fetch)]


def error(text: str, **kw) -> SoqlError:
    with pytest.raises(SoqlError) as info:
        compile_query(text, SCHEMA, NOW, **kw)
    return info.value


# --------------------------------------------------------------------------- shape of the query

def test_columns_and_names_use_canonical_casing():
    q = cq("select id, NAME, account.owner.NAME, account.name, partner_account__R.name, amount "
           "from OPPORTUNITY where closedate = today order by stagename")
    assert q.object_name == "Opportunity"
    assert q.columns == ["Id", "Name", "Account.Owner.Name", "Account.Name", "Partner_Account__r.Name", "Amount"]
    assert q.fields_used == {"Id", "Name", "AccountId", "Partner_Account__c", "Amount", "CloseDate", "StageName"}
    assert not q.is_count and q.limit is None and q.offset is None


def test_parse_is_cached_by_text():
    text = "SELECT Id FROM Account"
    assert parse(text) is parse(text)


def test_keywords_are_case_insensitive_and_keyword_like_names_still_work():
    schema = Schema(Obj("Order", [Field("Id", "id"), Field("Order__c", "string"), Field("Limit__c", "int")]))
    q = compile_query("sElEcT order__c, LIMIT__c FrOm order WhErE order__c != NULL oRdEr By order__c LiMiT 3",
                      schema, NOW)
    assert q.columns == ["Order__c", "Limit__c"] and q.limit == 3
    assert compile_query("SELECT Id FROM Group", SCHEMA, NOW).object_name == "Group"


def test_count_limit_offset():
    q = cq("SELECT COUNT() FROM Opportunity WHERE Amount > 0 LIMIT 10 OFFSET 1")
    assert q.is_count and q.columns == [] and q.limit == 10 and q.offset == 1
    assert sum(q.matches(r, fetch) for r in OPPS) == 2
    q = cq("SELECT Name FROM Opportunity LIMIT 2 OFFSET 1")
    assert [r["Name"] for r in q.order(OPPS, fetch)] == ["small deal", "Orphan"]
    assert cq("SELECT Name FROM Opportunity ALL ROWS").matches(OPPS[0], fetch)


# --------------------------------------------------------------------------- projection

def test_project_orders_fields_as_selected_and_nulls_as_none():
    q = cq("SELECT amount, NAME, id, closedate FROM opportunity")
    out = q.project(OPPS[2], fetch, API)
    assert list(out) == ["attributes", "Amount", "Name", "Id", "CloseDate"]
    assert out["attributes"] == {"type": "Opportunity",
                                 "url": f"/services/data/v{API}/sobjects/Opportunity/{OPPS[2]['Id']}"}
    assert out["Amount"] is None and out["Name"] == "Orphan"


def test_project_nests_parent_paths_and_merges_relationships():
    q = cq("SELECT Name, Account.Name, Account.Owner.Name, account.INDUSTRY, Account.Owner.Manager.Name "
           "FROM Opportunity")
    out = q.project(OPPS[0], fetch, API)
    assert out == {
        "attributes": {"type": "Opportunity", "url": f"/services/data/v{API}/sobjects/Opportunity/{OPPS[0]['Id']}"},
        "Name": "Big Deal",
        "Account": {
            "attributes": {"type": "Account", "url": f"/services/data/v{API}/sobjects/Account/{ACME}"},
            "Name": "Acme",
            "Owner": {
                "attributes": {"type": "User", "url": f"/services/data/v{API}/sobjects/User/{USER_ANN}"},
                "Name": "Ann",
                "Manager": {"attributes": {"type": "User", "url": f"/services/data/v{API}/sobjects/User/{USER_BOSS}"},
                            "Name": "Big Boss"},
            },
            "Industry": "Energy",
        },
    }
    assert q.row(OPPS[0], fetch) == ["Big Deal", "Acme", "Ann", "Energy", "Big Boss"]


def test_null_or_missing_parents_project_as_none():
    q = cq("SELECT Account.Name, Account.Owner.Name FROM Opportunity")
    assert q.project(OPPS[3], fetch, API)["Account"] is None  # no AccountId
    assert q.project(OPPS[2], fetch, API)["Account"] is None  # AccountId points nowhere
    assert q.row(OPPS[2], fetch) == [None, None]
    # Globex is owned by a queue: the nested Owner object has the Group's type.
    owner = q.project(OPPS[1], fetch, API)["Account"]["Owner"]
    assert owner == {"attributes": {"type": "Group", "url": f"/services/data/v{API}/sobjects/Group/{GROUP_Q}"},
                     "Name": "Sales Queue"}


def test_compound_address_and_location_projection():
    q = cq("SELECT billingaddress, site__c, Parent.BillingAddress FROM Account")
    acme = q.project(STORE["Account"][ACME], fetch, API)
    assert acme["BillingAddress"] == {"city": "Springfield", "country": "US", "geocodeAccuracy": None,
                                      "latitude": 40.5, "longitude": None, "postalCode": "12345",
                                      "state": None, "street": "1 Main St"}
    assert acme["Site__c"] == {"latitude": 1.5, "longitude": -2.25}
    assert acme["Parent"] is None
    globex = q.project(STORE["Account"][GLOBEX], fetch, API)
    assert globex["BillingAddress"] is None and globex["Site__c"] is None
    assert globex["Parent"]["BillingAddress"]["city"] == "Springfield"
    assert "BillingCity" in q.fields_used and "BillingAddress" in q.fields_used


# --------------------------------------------------------------------------- WHERE: operators

@pytest.mark.parametrize("where, expected", [
    ("Name = 'BIG DEAL'", ["Big Deal"]),
    ("StageName = 'Closed Won'", ["Big Deal", "Orphan"]),
    ("Name != 'big deal'", ["small deal", "Orphan", "No Account", "100% sure_thing"]),
    ("Name <> 'big deal'", ["small deal", "Orphan", "No Account", "100% sure_thing"]),
    ("Amount = null", ["Orphan", "No Account"]),
    ("Amount != null", ["Big Deal", "small deal", "100% sure_thing"]),
    ("Amount != 5000", ["small deal", "Orphan", "No Account", "100% sure_thing"]),  # != keeps nulls
    ("Amount > 250", ["Big Deal", "small deal"]),
    ("Amount >= 250.5", ["Big Deal", "small deal"]),
    ("Amount < 0", ["100% sure_thing"]),
    ("Amount <= -10.0", ["100% sure_thing"]),
    ("Amount = -10", ["100% sure_thing"]),
    ("NumberOfUnits__c = 3", ["Big Deal"]),
    ("Name > 'O'", ["small deal", "Orphan"]),  # text ordering ignores case
    ("Name LIKE 'big%'", ["Big Deal"]),
    ("Name LIKE '%DEAL'", ["Big Deal", "small deal"]),
    ("Name LIKE '_rphan'", ["Orphan"]),
    ("Name LIKE '100\\% sure\\_%'", ["100% sure_thing"]),
    ("Name LIKE '100\\%%'", ["100% sure_thing"]),
    ("Name LIKE 'big'", []),
    ("StageName IN ('prospecting', 'NEGOTIATION')", ["small deal", "100% sure_thing"]),
    ("StageName NOT IN ('prospecting', 'negotiation')", ["Big Deal", "Orphan", "No Account"]),
    ("Amount IN (5000, null)", ["Big Deal", "Orphan", "No Account"]),
    ("Amount NOT IN (5000, null)", ["small deal", "100% sure_thing"]),
    ("Tags__c INCLUDES ('red')", ["Big Deal", "No Account"]),
    ("Tags__c INCLUDES ('Red;Blue', 'Blue')", ["small deal", "No Account"]),
    ("Tags__c INCLUDES ('red;blue')", ["No Account"]),
    ("Tags__c EXCLUDES ('Blue')", ["Big Deal", "Orphan", "100% sure_thing"]),
    ("Tags__c = 'green;RED'", ["Big Deal"]),
    ("Tags__c != 'green;RED'", ["small deal", "Orphan", "No Account", "100% sure_thing"]),
    ("IsPrivate = true", ["Big Deal"]),
    ("IsPrivate = FALSE", ["small deal", "Orphan", "No Account", "100% sure_thing"]),  # missing checkbox is false
    ("IsPrivate = null", ["small deal", "Orphan", "No Account", "100% sure_thing"]),
    ("IsPrivate != false", ["Big Deal"]),
    ("IsDeleted = false", ["Big Deal", "small deal", "Orphan", "No Account", "100% sure_thing"]),
])
def test_operators(where, expected):
    assert names(where) == expected


@pytest.mark.parametrize("where, expected", [
    ("Amount > 100 AND StageName = 'closed won'", ["Big Deal"]),
    ("Amount > 1000 OR Amount < 0", ["Big Deal", "100% sure_thing"]),
    ("(Amount > 1000 OR Amount < 0) AND Name LIKE '%sure%'", ["100% sure_thing"]),
    ("Name LIKE '%deal' AND (Amount > 1000 OR Amount < 0)", ["Big Deal"]),
    ("NOT Name LIKE '%deal'", ["Orphan", "No Account", "100% sure_thing"]),
    ("NOT (Amount > 1000 OR Amount = null)", ["small deal", "100% sure_thing"]),
    ("Amount > 0 AND Amount < 1000 AND Name != null", ["small deal"]),
    ("((Amount >= 250.5) AND (Amount <= 5000))", ["Big Deal", "small deal"]),
    ("Amount > -100 AND Amount <= 250.5", ["small deal", "100% sure_thing"]),
])
def test_boolean_logic(where, expected):
    assert names(where) == expected


def test_parent_fields_in_where():
    assert names("Account.Name = 'acme'") == ["Big Deal", "100% sure_thing"]
    # A missing or absent parent makes every parent field null (so "= null" matches).
    assert names("Account.Name = null") == ["Orphan", "No Account"]
    assert names("Account.Owner.Name LIKE 'sales%'") == ["small deal"]
    assert names("account.owner.manager.name = 'Big Boss'") == ["Big Deal", "100% sure_thing"]


def test_id_matching_accepts_15_char_ids_case_sensitively():
    full = OPPS[1]["Id"]
    assert names(f"Id = '{full}'") == ["small deal"]
    assert names(f"Id = '{full[:15]}'") == ["small deal"]
    assert names(f"Id = '{full[:15]}{full[15:].lower()}'") == ["small deal"]  # the checksum is case-insensitive
    assert names(f"Id = '{full[:15].swapcase()}'") == []
    assert names(f"AccountId = '{ACME[:15]}'") == ["Big Deal", "100% sure_thing"]
    assert names(f"AccountId IN ('{GLOBEX[:15]}', '{GHOST}')") == ["small deal", "Orphan"]
    assert names(f"AccountId != '{ACME}'") == ["small deal", "Orphan", "No Account"]


def test_id_filter():
    a, b = OPPS[0]["Id"], OPPS[1]["Id"][:15]
    assert cq(f"SELECT Id FROM Opportunity WHERE Id = '{a}'").id_filter == frozenset({a})
    assert cq(f"SELECT Id FROM Opportunity WHERE Amount > 1 AND id IN ('{a}', '{b}')").id_filter == frozenset({a, b})
    assert cq(f"SELECT Id FROM Opportunity WHERE Id = '{a}' OR Amount > 1").id_filter is None
    assert cq(f"SELECT Id FROM Opportunity WHERE Id != '{a}'").id_filter is None
    assert cq(f"SELECT Id FROM Opportunity WHERE AccountId = '{ACME}'").id_filter is None
    assert cq("SELECT Id FROM Opportunity").id_filter is None


# --------------------------------------------------------------------------- WHERE: dates

@pytest.mark.parametrize("where, expected", [
    ("CloseDate = 2024-05-15", ["Big Deal"]),
    ("CloseDate > 2024-05-14", ["Big Deal", "Orphan"]),
    ("CloseDate <= 2024-05-14", ["small deal", "No Account"]),
    ("SystemModstamp >= 2024-05-14T23:59:59Z", ["Big Deal", "small deal"]),
    ("SystemModstamp > 2024-05-14T23:59:59.000Z", ["Big Deal"]),
    ("SystemModstamp = 2024-05-15T10:00:00+02:00", ["Big Deal"]),
    ("SystemModstamp = 2024-05-14T15:59:59-0800", ["small deal"]),
    ("SystemModstamp >= 2024-01-01T00:00:00Z AND SystemModstamp < 2024-02-01T00:00:00Z", ["Orphan"]),
    ("SystemModstamp < 2024-01-01T00:00:00Z", ["No Account"]),
])
def test_date_and_datetime_literals(where, expected):
    assert names(where) == expected


# Records whose CloseDate / SystemModstamp fall on each day from 2023-05-01 to 2025-06-30.
DAYS = [dt.date(2023, 5, 1) + dt.timedelta(days=i) for i in range(792)]
DATED = [{"Id": make_id("006", 100 + i), "CloseDate": d.isoformat(),
          "SystemModstamp": f"{d.isoformat()}T23:59:59.000+0000"} for i, d in enumerate(DAYS)]


def _span(where: str, field_name: str) -> tuple[str, str, int] | None:
    q = cq(f"SELECT Id FROM Opportunity WHERE {field_name} {where}")
    hit = [r["CloseDate"] for r in DATED if q.matches(r, fetch)]
    return (hit[0], hit[-1], len(hit)) if hit else None


@pytest.mark.parametrize("literal, first, last", [
    ("TODAY", "2024-05-15", "2024-05-15"),
    ("YESTERDAY", "2024-05-14", "2024-05-14"),
    ("TOMORROW", "2024-05-16", "2024-05-16"),
    ("THIS_WEEK", "2024-05-12", "2024-05-18"),  # weeks start on Sunday
    ("LAST_WEEK", "2024-05-05", "2024-05-11"),
    ("NEXT_WEEK", "2024-05-19", "2024-05-25"),
    ("THIS_MONTH", "2024-05-01", "2024-05-31"),
    ("LAST_MONTH", "2024-04-01", "2024-04-30"),
    ("NEXT_MONTH", "2024-06-01", "2024-06-30"),
    ("THIS_YEAR", "2024-01-01", "2024-12-31"),
    ("LAST_YEAR", "2023-05-01", "2023-12-31"),  # data starts in May 2023
    ("NEXT_YEAR", "2025-01-01", "2025-06-30"),  # and ends in June 2025
    ("THIS_QUARTER", "2024-04-01", "2024-06-30"),
    ("LAST_90_DAYS", "2024-02-15", "2024-05-15"),
    ("NEXT_90_DAYS", "2024-05-16", "2024-08-13"),
    ("LAST_N_DAYS:1", "2024-05-14", "2024-05-15"),
    ("NEXT_N_DAYS:3", "2024-05-16", "2024-05-18"),
    ("N_DAYS_AGO:3", "2024-05-12", "2024-05-12"),
    ("last_n_months:2", "2024-03-01", "2024-04-30"),
    ("N_WEEKS_AGO:2", "2024-04-28", "2024-05-04"),
])
@pytest.mark.parametrize("field_name", ["CloseDate", "SystemModstamp"])
def test_relative_date_literals(literal, first, last, field_name):
    found = _span(f"= {literal}", field_name)
    assert found is not None and found[:2] == (first, last)
    days = (dt.date.fromisoformat(last) - dt.date.fromisoformat(first)).days + 1
    assert found[2] == days  # contiguous


def test_relative_date_literal_comparisons_use_range_bounds():
    # THIS_WEEK is [2024-05-12, 2024-05-19)
    assert _span("< THIS_WEEK", "CloseDate")[1] == "2024-05-11"
    assert _span("<= THIS_WEEK", "CloseDate")[1] == "2024-05-18"
    assert _span("> THIS_WEEK", "CloseDate")[0] == "2024-05-19"
    assert _span(">= THIS_WEEK", "SystemModstamp")[0] == "2024-05-12"
    assert _span("!= THIS_WEEK", "CloseDate")[2] == len(DATED) - 7
    assert _span("IN (YESTERDAY, TOMORROW)", "CloseDate")[2] == 2


# --------------------------------------------------------------------------- ORDER BY

def test_order_by_defaults_and_explicit_null_placement():
    def order(clause: str) -> list[str]:
        return [r["Name"] for r in cq(f"SELECT Name FROM Opportunity ORDER BY {clause}").order(OPPS, fetch)]

    assert order("Amount") == ["Orphan", "No Account", "100% sure_thing", "small deal", "Big Deal"]
    assert order("Amount DESC") == ["Big Deal", "small deal", "100% sure_thing", "Orphan", "No Account"]
    assert order("Amount ASC NULLS LAST") == ["100% sure_thing", "small deal", "Big Deal", "Orphan", "No Account"]
    assert order("Amount DESC NULLS FIRST") == ["Orphan", "No Account", "Big Deal", "small deal", "100% sure_thing"]
    assert order("Name") == ["100% sure_thing", "Big Deal", "No Account", "Orphan", "small deal"]
    assert order("StageName DESC, Name") == ["small deal", "100% sure_thing", "Big Deal", "Orphan", "No Account"]
    assert order("Account.Name DESC NULLS LAST, Name DESC") == [
        "small deal", "Big Deal", "100% sure_thing", "Orphan", "No Account"]
    assert order("CloseDate DESC LIMIT 2") == ["Orphan", "Big Deal"]


def test_without_order_by_input_order_is_kept():
    q = cq("SELECT Id FROM Opportunity OFFSET 3")
    assert q.order(reversed(OPPS), fetch) == [OPPS[1], OPPS[0]]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(alphabet="aAbB", max_size=3)), max_size=30),
       st.booleans(), st.booleans())
def test_order_is_a_sorted_stable_permutation(values, descending, nulls_last):
    records = [{"Id": make_id("006", i), "Name": v} for i, v in enumerate(values)]
    clause = f"Name {'DESC' if descending else 'ASC'} NULLS {'LAST' if nulls_last else 'FIRST'}"
    out = cq(f"SELECT Id FROM Opportunity ORDER BY {clause}").order(records, fetch)
    assert sorted(map(id, out)) == sorted(map(id, records))
    nulls = [r for r in out if r["Name"] is None]
    rest = [r for r in out if r["Name"] is not None]
    assert out == (rest + nulls if nulls_last else nulls + rest)
    keys = [(r["Name"].lower(), int(r["Id"][-9:-3], 36)) for r in rest]  # ties keep input order
    expected = sorted(keys, key=lambda k: k[0], reverse=descending)
    assert [k[0] for k in keys] == [k[0] for k in expected]
    for (a, ia), (b, ib) in zip(keys, keys[1:]):
        if a == b:
            assert ia < ib


# --------------------------------------------------------------------------- errors

def test_unknown_field_message_has_salesforce_caret_layout():
    e = error("SELECT Id, Foo__c FROM Opportunity")
    assert e.error_code == "INVALID_FIELD"
    assert e.message == (
        "\nSELECT Id, Foo__c FROM Opportunity\n           ^\nERROR at Row:1:Column:12\n"
        "No such column 'Foo__c' on entity 'Opportunity'. If you are attempting to use a custom field, be sure "
        "to append the '__c' after the custom field name. Please reference your WSDL or the describe call for "
        "the appropriate names.")


def test_error_positions_in_a_multi_line_query():
    e = error("SELECT Id,\n       Name\nFROM Opportunity\nWHERE Amount > 0 AND\n      Account.Nmae = 'x'")
    assert e.error_code == "INVALID_FIELD"
    assert e.message.startswith("\n      Account.Nmae = 'x'\n      ^\nERROR at Row:5:Column:7\n"
                                "No such column 'Nmae' on entity 'Account'.")


def test_unknown_relationship_and_object():
    e = error("SELECT Id, Acount.Name FROM Opportunity")
    assert e.error_code == "INVALID_FIELD"
    assert e.message == (
        "\nSELECT Id, Acount.Name FROM Opportunity\n           ^\nERROR at Row:1:Column:12\n"
        "Didn't understand relationship 'Acount' in field path. If you are attempting to use a custom "
        "relationship, be sure to append the '__r' after the custom relationship name. Please reference your "
        "WSDL or the describe call for the appropriate names.")
    e = error("SELECT Id FROM XYZZY")
    assert e.error_code == "INVALID_TYPE"
    assert e.message == (
        "\nSELECT Id FROM XYZZY\n               ^\nERROR at Row:1:Column:16\n"
        "sObject type 'XYZZY' is not supported. If you are attempting to use a custom object, be sure to append "
        "the '__c' after the entity name. Please reference your WSDL or the describe call for the appropriate "
        "names.")
    # A plain field is not a relationship.
    assert "Didn't understand relationship 'Name'" in error("SELECT Name.Foo FROM Account").message


@pytest.mark.parametrize("text, token, column", [
    ("SELECT Id FROM Account WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "OR", 56),
    ("SELECT Id FROM Account WHERE Name = 'a' OR Name = 'b' AND Name = 'c'", "AND", 55),
    ("SELECT Id FROM Account WHERE", "<EOF>", 29),
    ("SELECT Id, FROM Account", "FROM", 12),
    ("SELECT Id FROM Account xyz", "xyz", 24),
    ("SELECT Id FROM Account WHERE Name = \"x\"", '"', 37),
    ("SELECT Id FROM Account LIMIT -1", "-1", 30),
    ("SELECT Id FROM Account HAVING COUNT(Id) > 1", "HAVING", 24),
    ("SELECT Id FROM Account WHERE CreatedDate = LAST_N_DAY:3", "LAST_N_DAY", 44),
    ("SELECT Id, (SELECT Id FROM Contacts) FROM Account", "(", 12),
])
def test_syntax_errors(text, token, column):
    with pytest.raises(SoqlError) as info:
        parse(text)
    assert info.value.error_code == "MALFORMED_QUERY"
    line = text
    assert info.value.message == (f"\n{line}\n{' ' * (column - 1)}^\nERROR at Row:1:Column:{column}\n"
                                  f"unexpected token: '{token}'")


def test_syntax_error_position_in_a_multi_line_query():
    with pytest.raises(SoqlError) as info:
        parse("SELECT Id\nFROM Account\nWHERE Name = 'x' AND\n  Name = 'y' OR Name = 'z'")
    assert info.value.message == ("\n  Name = 'y' OR Name = 'z'\n             ^\nERROR at Row:4:Column:14\n"
                                  "unexpected token: 'OR'")


def test_and_or_mixing_is_fine_with_parentheses():
    assert names("Name = 'Orphan' AND (Amount = null OR Amount > 1)") == ["Orphan"]
    assert names("(Name = 'Orphan' AND Amount = null) OR Amount > 1000") == ["Big Deal", "Orphan"]


@pytest.mark.parametrize("where, field_name, type_text", [
    ("Amount = '5'", "Amount", "must be of type double and should not be enclosed in quotes"),
    ("IsPrivate = 'true'", "IsPrivate", "must be of type boolean and should not be enclosed in quotes"),
    ("CloseDate = '2024-01-01'", "CloseDate", "must be of type date and should not be enclosed in quotes"),
    ("CreatedDate = '2024-01-01T00:00:00Z'", "CreatedDate",
     "must be of type dateTime and should not be enclosed in quotes"),
    ("CreatedDate = 2024-01-01", "CreatedDate", "must be of type dateTime and should not be enclosed in quotes"),
    ("CloseDate = 2024-01-01T00:00:00Z", "CloseDate", "must be of type date and should not be enclosed in quotes"),
    ("Name = 5", "Name", "must be of type string and should be enclosed in quotes"),
    ("AccountId = true", "AccountId", "must be of type id and should be enclosed in quotes"),
])
def test_literal_type_mismatches(where, field_name, type_text):
    e = error(f"SELECT Id FROM Opportunity WHERE {where}")
    assert e.error_code == "INVALID_FIELD"
    column = len("SELECT Id FROM Opportunity WHERE ") + where.index("=") + 3
    assert e.message.endswith(f"^\nERROR at Row:1:Column:{column}\n"
                              f"value of filter criterion for field '{field_name}' {type_text}")


def test_other_semantic_errors():
    e = error("SELECT Name, Id, name FROM Account")
    assert (e.error_code, e.message.splitlines()[-1]) == ("DUPLICATE_FIELD", "duplicate field selected: Name")
    assert "ERROR at Row:1:Column:18" in e.message
    e = error("SELECT Id FROM Account WHERE BillingAddress = null")
    assert (e.error_code, e.message.splitlines()[-1]) == (
        "INVALID_FIELD", "field 'BillingAddress' can not be filtered in query call")
    e = error("SELECT Id FROM Opportunity WHERE Id = '006abc'")
    assert (e.error_code, e.message.splitlines()[-1]) == ("INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: 006abc")
    e = error("SELECT Id FROM Opportunity WHERE Name INCLUDES ('a')")
    assert e.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    e = error("SELECT Id FROM Opportunity WHERE Amount LIKE '5%'")
    assert e.error_code == "INVALID_QUERY_FILTER_OPERATOR"
    e = error("SELECT Id FROM Opportunity ORDER BY Tags__c")
    assert e.message.splitlines()[-1] == "field 'Tags__c' can not be sorted in a query call"
    assert error("SELECT Name, COUNT(Id) FROM Opportunity").message.splitlines()[-1] == \
        "Field must be grouped or aggregated: Name"
    assert error("SELECT TOLABEL(StageName) FROM Opportunity").error_code == "MALFORMED_QUERY"
    assert error("SELECT COUNT(), Name FROM Opportunity").error_code == "MALFORMED_QUERY"
    assert error("SELECT Id FROM Opportunity WHERE Name = 'a\\qb'").error_code == "MALFORMED_QUERY"
    assert error("  ").message == "SOQL statements cannot be empty or null"


def test_string_escapes():
    records = [{"Id": make_id("006", 1), "Name": "it's \"q\"\\\n\t"}]
    assert names("Name = 'IT\\'S \\\"Q\\\"\\\\\\n\\t'", records) == ["it's \"q\"\\\n\t"]


# --------------------------------------------------------------------------- Bulk

def test_bulk_rejects_compound_fields_and_offset_but_rows_flatten_parents():
    e = error("SELECT Id, BillingAddress FROM Account", bulk=True)
    assert (e.error_code, e.message) == ("INVALID_FIELD", "Selecting compound data not supported in Bulk Query")
    assert error("SELECT Id, Site__c FROM Account", bulk=True).error_code == "INVALID_FIELD"
    assert error("SELECT Id FROM Account OFFSET 5", bulk=True).error_code == "MALFORMED_QUERY"
    q = cq("SELECT Id, Name, Owner.Name, BillingCity, Parent.Name FROM Account", bulk=True)
    assert q.columns == ["Id", "Name", "Owner.Name", "BillingCity", "Parent.Name"]
    assert q.row(STORE["Account"][GLOBEX], fetch) == [GLOBEX, "Globex", "Sales Queue", None, "Acme"]
