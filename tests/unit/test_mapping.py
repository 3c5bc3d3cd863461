"""The mapping file format: the shipped default, every load-time rule and the message an admin reads
when a rule is broken (file, key path, valid choices), durations, lookups and the JSON Schema."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest

import connector.mapping as mapping_module
from connector.emulator.orgdef import load_org
from connector.sync import policies
from connector.sync.policies import register_policy
from connector.mapping import (
    BUILTIN_POLICIES,
    DEFAULT_MAPPING_PATH,
    DIRECTIONS,
    POLICY_NAMES,
    FieldSelection,
    Mapping,
    MappingError,
    load_mapping,
    mapping_json_schema,
    parse_duration,
)

CO_SELL_OBJECTS = ["Account", "Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c"]
REFERENCE_OBJECTS = [
    "User", "CurrencyType", "DatedConversionRate", "Territory2Model", "Territory2Type", "Territory2",
    "UserTerritory2Association", "ObjectTerritory2Association", "ObjectTerritory2AssignmentRule",
    "ObjectTerritory2AssignmentRuleItem", "RuleTerritory2Association", "OpportunitySplitType",
    "OpportunitySplit",
]
# The built-ins and the co-sell policies the package ships (registered whenever a mapping loads).
ALL_POLICIES = ("latest_wins, local_wins, manual, participant_delete_wins, participant_edit_wins, "
                "registration_status, salesforce_wins")


def write(tmp_path: Path, text: str, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(MappingError) as info:
        load_mapping(path)
    message = str(info.value)
    assert str(path) in message
    return message


def one_object(body: str, name: str = "Opportunity") -> str:
    """A mapping file with one object whose settings are `body` (YAML, indented under the name)."""
    indented = textwrap.indent(textwrap.dedent(body).strip("\n"), "    ")
    return f"version: 1\nobjects:\n  {name}:\n{indented}\n"


# -- the shipped default ------------------------------------------------------------------------------

def test_shipped_default_loads_and_covers_the_cosell_and_reference_objects():
    mapping = load_mapping()
    assert mapping == load_mapping(DEFAULT_MAPPING_PATH)
    assert list(mapping.objects) == CO_SELL_OBJECTS + REFERENCE_OBJECTS
    for name in CO_SELL_OBJECTS:
        obj = mapping.objects[name]
        assert (obj.direction, obj.external_id, obj.create, obj.poll_interval <= 900) == \
            ("read_write", "Portal_Id__c", True, True)
    for name in REFERENCE_OBJECTS:
        obj = mapping.objects[name]
        assert (obj.direction, obj.conflict_policy, obj.create) == ("read_only", "salesforce_wins", False)
        assert 300 <= obj.poll_interval <= 86_400
    opportunity = mapping.objects["Opportunity"]
    assert opportunity.conflict_policy == "latest_wins"
    assert [opportunity.policy_for(f) for f in ("StageName", "Probability", "IsWon", "Amount")] == \
        ["salesforce_wins", "salesforce_wins", "salesforce_wins", "latest_wins"]
    assert mapping.objects["Deal_Registration__c"].policy_for("Status__c") == "registration_status"
    user = mapping.objects["User"]
    assert user.selects("Email") and user.selects("isactive") and not user.selects("Phone")


def test_shipped_default_names_only_objects_and_fields_of_the_demo_org():
    org = load_org("cosell_demo")
    for name, obj in load_mapping().objects.items():
        described = org.get_object(name)
        assert described is not None, name
        named = [*(obj.fields.include or []), *(obj.fields.exclude or []), *obj.field_policies]
        if obj.external_id:
            named.append(obj.external_id)
            assert described.field(obj.external_id).external_id, (name, obj.external_id)
        for field in named:
            assert described.field(field) is not None, f"{name}.{field}"


# -- defaults and lookups -----------------------------------------------------------------------------

def test_defaults_apply_unless_an_object_overrides_them(tmp_path):
    mapping = load_mapping(write(tmp_path, """\
        version: 1
        defaults: {direction: read_write, conflict_policy: latest_wins, poll_interval: 2m}
        objects:
          Opportunity: {external_id: Portal_Id__c}
          Account: {external_id: Portal_Id__c, conflict_policy: local_wins, poll_interval: 45}
          CurrencyType: {direction: read_only}
          Contact: {create: false}
    """))
    opp, acct, cur, contact = (mapping.objects[n] for n in ("Opportunity", "Account", "CurrencyType", "Contact"))
    assert (opp.direction, opp.conflict_policy, opp.poll_interval) == ("read_write", "latest_wins", 120)
    assert (acct.conflict_policy, acct.poll_interval) == ("local_wins", 45)
    # a read_only object takes Salesforce's values whatever the default policy says
    assert (cur.direction, cur.conflict_policy, cur.poll_interval, cur.create) == \
        ("read_only", "salesforce_wins", 120, False)
    assert (contact.direction, contact.create, contact.external_id) == ("read_write", False, None)
    assert opp.name == "Opportunity"


def test_without_defaults_objects_are_read_only_and_polled_every_five_minutes(tmp_path):
    mapping = load_mapping(write(tmp_path, "version: 1\nobjects:\n  CurrencyType:\n"))
    obj = mapping.objects["CurrencyType"]
    assert (obj.direction, obj.conflict_policy, obj.poll_interval, obj.fields.is_all) == \
        ("read_only", "salesforce_wins", 300, True)
    assert (mapping.database.schema_name, mapping.database.table_prefix) == (None, "")


def test_object_lookup_selects_and_policy_for_are_case_insensitive(tmp_path):
    mapping = load_mapping(write(tmp_path, one_object("""\
        direction: read_write
        external_id: Portal_Id__c
        conflict_policy: latest_wins
        fields: {exclude: [Description]}
        field_policies: {StageName: salesforce_wins}
    """)))
    obj = mapping.object("OPPORTUNITY")
    assert obj is mapping.objects["Opportunity"]
    assert mapping.object("Account") is None
    assert obj.selects("Amount") and not obj.selects("description")
    assert obj.policy_for("stagename") == "salesforce_wins"
    assert obj.policy_for("Amount") == "latest_wins"
    assert FieldSelection.all().selects("Anything__c")


def test_database_options_are_read(tmp_path):
    mapping = load_mapping(write(tmp_path, """\
        version: 1
        database: {schema: salesforce, table_prefix: sf_}
        objects: {CurrencyType: {}}
    """))
    assert (mapping.database.schema_name, mapping.database.table_prefix) == ("salesforce", "sf_")


# -- durations ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("value, seconds", [
    (60, 60), ("90", 90), ("30s", 30), ("5m", 300), ("1h", 3_600), ("1d", 86_400), (" 2 h ", 7_200),
])
def test_durations_parse(value, seconds):
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["5x", "1.5h", "-5m", "m", "", "5 minutes", True, 1.5, None])
def test_bad_durations_are_refused_with_the_accepted_forms(value):
    with pytest.raises(ValueError, match=r"30s, 5m, 1h, 1d"):
        parse_duration(value)


@pytest.mark.parametrize("value", ["5s", "0", "2d", 86_401, -60])
def test_poll_interval_outside_ten_seconds_to_a_day(tmp_path, value):
    message = load_error(tmp_path, one_object(f"poll_interval: {value}", name="CurrencyType"))
    assert "objects.CurrencyType.poll_interval" in message
    assert "choose between 10 seconds and 1 day" in message


def test_poll_interval_that_is_not_a_duration(tmp_path):
    message = load_error(tmp_path, "version: 1\ndefaults: {poll_interval: soon}\nobjects: {CurrencyType: {}}\n")
    assert "defaults.poll_interval: 'soon' is not a duration" in message
    assert "30s, 5m, 1h, 1d" in message


# -- keys ---------------------------------------------------------------------------------------------

def test_unknown_top_level_key_lists_the_allowed_keys(tmp_path):
    message = load_error(tmp_path, "version: 1\nobject: {}\nobjects: {CurrencyType: {}}\n")
    assert "object: unknown key 'object'; allowed keys: version, defaults, database, cosell, objects" in message


def test_unknown_object_key_lists_the_allowed_keys(tmp_path):
    message = load_error(tmp_path, one_object("directon: read_only"))
    assert "objects.Opportunity.directon: unknown key 'directon'" in message
    assert ("allowed keys: fields, direction, create, external_id, conflict_policy, field_policies, "
            "poll_interval") in message


@pytest.mark.parametrize("section, keys", [
    ("defaults", "direction, conflict_policy, poll_interval"),
    ("database", "schema, table_prefix"),
])
def test_unknown_key_in_a_section_lists_its_keys(tmp_path, section, keys):
    message = load_error(tmp_path, f"version: 1\n{section}: {{colour: blue}}\nobjects: {{CurrencyType: {{}}}}\n")
    assert f"{section}.colour: unknown key 'colour'; allowed keys: {keys}" in message


def test_unknown_key_in_fields_lists_include_and_exclude(tmp_path):
    message = load_error(tmp_path, one_object("fields: {only: [Name]}", name="User"))
    assert "objects.User.fields.only: unknown key 'only'; allowed keys: include, exclude" in message


def test_a_key_given_twice_is_an_error_with_its_line(tmp_path):
    message = load_error(tmp_path, """\
        version: 1
        objects:
          CurrencyType: {}
          CurrencyType: {poll_interval: 1h}
    """)
    assert "line 4" in message and "'CurrencyType' a second time (first on line 3)" in message


def test_version_must_be_1(tmp_path):
    message = load_error(tmp_path, "version: 2\nobjects: {CurrencyType: {}}\n")
    assert "version: 2 is not valid; choose one of: 1" in message
    message = load_error(tmp_path, "objects: {CurrencyType: {}}\n")
    assert "version: required key missing" in message


def test_objects_are_required_and_not_empty(tmp_path):
    assert "objects: required key missing" in load_error(tmp_path, "version: 1\n")
    assert "objects: list at least one object" in load_error(tmp_path, "version: 1\nobjects: {}\n")


# -- directions and policies --------------------------------------------------------------------------

def test_bad_direction_names_the_choices(tmp_path):
    message = load_error(tmp_path, one_object("direction: both"))
    assert "objects.Opportunity.direction: 'both' is not valid; choose one of: read_only, read_write" in message


def test_bad_default_direction_names_the_choices(tmp_path):
    message = load_error(tmp_path, "version: 1\ndefaults: {direction: sideways}\nobjects: {CurrencyType: {}}\n")
    assert "defaults.direction: 'sideways' is not valid; choose one of: read_only, read_write" in message


@pytest.mark.parametrize("body, key", [
    ("direction: read_write\nexternal_id: Portal_Id__c\nconflict_policy: newest",
     "objects.Opportunity.conflict_policy"),
    ("direction: read_write\nexternal_id: Portal_Id__c\nfield_policies: {StageName: newest}",
     "objects.Opportunity.field_policies.StageName"),
])
def test_unknown_conflict_policy_names_the_registered_ones(tmp_path, body, key):
    message = load_error(tmp_path, one_object(body))
    assert f"{key}: 'newest' is not a conflict policy; choose one of: {ALL_POLICIES}" in message


def test_unknown_default_conflict_policy(tmp_path):
    message = load_error(tmp_path, "version: 1\ndefaults: {conflict_policy: Salesforce_Wins}\n"
                                   "objects: {CurrencyType: {}}\n")
    assert f"defaults.conflict_policy: 'Salesforce_Wins' is not a conflict policy; choose one of: {ALL_POLICIES}" \
        in message


def test_registering_a_policy_name_makes_it_valid(tmp_path):
    name = "test_registration_state_machine"
    text = one_object(f"""\
        direction: read_write
        external_id: Portal_Id__c
        field_policies: {{Status__c: {name}}}
    """, name="Deal_Registration__c")
    assert "is not a conflict policy" in load_error(tmp_path, text)
    policy = _NamedPolicy(name)
    saved = dict(policies._REGISTRY)
    try:
        register_policy(policy)
        register_policy(policy)  # idempotent
        assert name in POLICY_NAMES and set(BUILTIN_POLICIES) <= set(POLICY_NAMES)
        obj = load_mapping(write(tmp_path, text, "good.yaml")).objects["Deal_Registration__c"]
        assert obj.policy_for("Status__c") == name
        assert name in mapping_json_schema()["$defs"]["ObjectMapping"]["properties"]["conflict_policy"]["enum"]
    finally:
        policies._REGISTRY.clear()
        policies._REGISTRY.update(saved)
    assert "is not a conflict policy" in load_error(tmp_path, text), "a name is valid only while registered"


class _NamedPolicy:
    def __init__(self, name):
        self.name = name

    def resolve(self, conflict):
        raise AssertionError("not called")


@pytest.mark.parametrize("name", ["", "Has Space", "UpperCase", "1st", None])
def test_unusable_policy_names_are_refused(name):
    with pytest.raises((ValueError, TypeError), match="not a usable policy name|not a conflict policy"):
        register_policy(_NamedPolicy(name))
    assert name not in POLICY_NAMES


def test_policy_names_cannot_be_added_around_the_registry():
    assert not hasattr(POLICY_NAMES, "add")


# -- fields -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("body, expected", [
    ("fields: everything", "objects.User.fields: 'everything' is not valid; choose one of: all, "
                           "{include: [...]}, {exclude: [...]}"),
    ("fields: {include: [Name], exclude: [Email]}",
     "objects.User.fields: give either include or exclude, not both"),
    ("fields: {}", "objects.User.fields: give include: [...] or exclude: [...], or write fields: all"),
    ("fields: {include: []}", "objects.User.fields.include: an empty list; list at least one field"),
    ("fields: {exclude: []}", "objects.User.fields.exclude: an empty list; list at least one field"),
    ("fields: {include: [Name, Email, name]}", "objects.User.fields.include[2]: 'name' is listed already"),
    ("fields: {include: [Name, Full Name]}", "objects.User.fields.include[1]: 'Full Name' is not a Salesforce "
                                              "API name"),
])
def test_field_selection_rules(tmp_path, body, expected):
    assert expected in load_error(tmp_path, one_object(body, name="User"))


def test_field_policy_on_an_excluded_field(tmp_path):
    message = load_error(tmp_path, one_object("""\
        direction: read_write
        external_id: Portal_Id__c
        fields: {exclude: [StageName]}
        field_policies: {StageName: salesforce_wins}
    """))
    assert "objects.Opportunity.field_policies.StageName: 'StageName' is in fields.exclude" in message


def test_field_policy_on_a_field_not_included_names_the_included_ones(tmp_path):
    message = load_error(tmp_path, one_object("""\
        direction: read_write
        external_id: Portal_Id__c
        fields: {include: [Name, Amount, Portal_Id__c]}
        field_policies: {stagename: salesforce_wins}
    """))
    assert ("objects.Opportunity.field_policies.stagename: 'stagename' is not in fields.include; "
            "choose one of: Name, Amount, Portal_Id__c") in message


def test_field_policy_given_twice_in_different_case(tmp_path):
    message = load_error(tmp_path, one_object("""\
        direction: read_write
        external_id: Portal_Id__c
        field_policies: {StageName: salesforce_wins, stagename: local_wins}
    """))
    assert "objects.Opportunity.field_policies.stagename: 'stagename' is given already as 'StageName'" in message


def test_external_id_field_must_be_synced(tmp_path):
    message = load_error(tmp_path, one_object("""\
        direction: read_write
        external_id: Portal_Id__c
        fields: {include: [Name, Amount]}
    """))
    assert ("objects.Opportunity.external_id: 'Portal_Id__c' is not in fields.include; choose one of: Name, Amount"
            in message)


# -- external IDs and read-only objects ---------------------------------------------------------------

def test_read_write_needs_an_external_id(tmp_path):
    message = load_error(tmp_path, one_object("direction: read_write"))
    assert "objects.Opportunity.external_id: required for a read_write object" in message
    assert "create: false" in message


def test_read_write_through_defaults_needs_an_external_id_too(tmp_path):
    message = load_error(tmp_path, "version: 1\ndefaults: {direction: read_write}\nobjects: {Opportunity: {}}\n")
    assert "objects.Opportunity.external_id: required for a read_write object" in message


def test_create_false_needs_no_external_id(tmp_path):
    obj = load_mapping(write(tmp_path, one_object("direction: read_write\ncreate: false"))).objects["Opportunity"]
    assert (obj.create, obj.external_id) == (False, None)


@pytest.mark.parametrize("body, key", [
    ("external_id: Portal_Id__c", "objects.Opportunity.external_id: 'Portal_Id__c' would mean nothing"),
    ("field_policies: {StageName: local_wins}", "objects.Opportunity.field_policies: would mean nothing"),
    ("conflict_policy: latest_wins", "objects.Opportunity.conflict_policy: 'latest_wins' would mean nothing"),
    ("create: true", "objects.Opportunity.create: true would mean nothing"),
])
def test_read_only_objects_refuse_settings_that_would_mean_nothing(tmp_path, body, key):
    message = load_error(tmp_path, one_object(f"direction: read_only\n{body}"))
    assert key in message and "set direction: read_write" in message


def test_read_only_conflict_policy_names_the_one_choice(tmp_path):
    message = load_error(tmp_path, one_object("conflict_policy: manual", name="CurrencyType"))
    assert "choose one of: salesforce_wins (or leave it out)" in message


def test_read_only_object_may_spell_out_salesforce_wins(tmp_path):
    mapping = load_mapping(write(tmp_path, one_object("conflict_policy: salesforce_wins\ncreate: false")))
    assert mapping.objects["Opportunity"].conflict_policy == "salesforce_wins"


# -- names and the database section -------------------------------------------------------------------

@pytest.mark.parametrize("name", ["Deal Registration", "1Object", "Bad-Name", "Trailing_", "Triple___c",
                                  "a__b__c__d"])
def test_object_names_must_be_salesforce_api_names(tmp_path, name):
    message = load_error(tmp_path, f"version: 1\nobjects:\n  '{name}': {{}}\n")
    assert f"objects.{name}: {name!r} is not a Salesforce API name" in message
    assert "__c" in message


@pytest.mark.parametrize("name", ["Deal_Registration__c", "ns__Widget__c", "Setting__mdt", "Territory2"])
def test_valid_api_names_load(tmp_path, name):
    assert name in load_mapping(write(tmp_path, f"version: 1\nobjects:\n  {name}: {{}}\n")).objects


def test_object_names_are_unique_ignoring_case(tmp_path):
    message = load_error(tmp_path, "version: 1\nobjects:\n  Opportunity: {}\n  OPPORTUNITY: {}\n")
    assert "objects.OPPORTUNITY: 'OPPORTUNITY' names the same object as 'Opportunity'" in message


@pytest.mark.parametrize("options, expected", [
    ("{schema: my-schema}", "database.schema: 'my-schema' is not a usable PostgreSQL schema name"),
    ("{table_prefix: 'sf-'}", "database.table_prefix: 'sf-' is not a usable table prefix"),
    ("{table_prefix: " + "x" * 31 + "}", "at most 30 characters"),
])
def test_database_options_are_checked(tmp_path, options, expected):
    assert expected in load_error(tmp_path, f"version: 1\ndatabase: {options}\nobjects: {{CurrencyType: {{}}}}\n")


# -- files --------------------------------------------------------------------------------------------

def test_yaml_syntax_error_names_the_line(tmp_path):
    message = load_error(tmp_path, "version: 1\nobjects:\n  Opportunity: {direction: read_write\n  Account: {}\n")
    assert "not valid YAML" in message and "line 4" in message


@pytest.mark.parametrize("text, expected", [
    ("", "this is an empty file"),
    ("- Opportunity\n- Account\n", "this is a list"),
    ("just words\n", "this is plain text"),
])
def test_a_file_that_is_not_a_mapping(tmp_path, text, expected):
    message = load_error(tmp_path, text)
    assert "a mapping file is a YAML mapping with the keys version, objects" in message and expected in message


def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nowhere.yaml"
    with pytest.raises(MappingError, match="nowhere.yaml: no such mapping file"):
        load_mapping(str(path))


def test_every_problem_is_listed_at_once(tmp_path):
    message = load_error(tmp_path, """\
        version: 1
        defaults: {direction: both}
        objects:
          Opportunity: {conflict_policy: newest, poll_interval: 1s}
          User: {fields: {include: []}}
    """)
    assert message.splitlines()[0].endswith("4 problems in this mapping file:")
    for key in ("defaults.direction", "objects.Opportunity.conflict_policy", "objects.Opportunity.poll_interval",
                "objects.User.fields.include"):
        assert key in message


# -- the public surface -------------------------------------------------------------------------------

def test_option_sets_come_from_their_types():
    assert DIRECTIONS == ("read_only", "read_write")
    assert BUILTIN_POLICIES == ("salesforce_wins", "local_wins", "latest_wins", "manual")
    assert all(hasattr(mapping_module, name) for name in mapping_module.__all__)


def test_json_schema_describes_every_key():
    schema = mapping_json_schema()
    assert isinstance(schema, dict)
    assert {"version", "defaults", "database", "objects"} <= set(schema["properties"])

    def undocumented(properties: dict[str, Any]) -> list[str]:
        return [key for key, prop in properties.items() if not prop.get("description")]

    assert undocumented(schema["properties"]) == []
    for name, definition in schema["$defs"].items():
        assert undocumented(definition["properties"]) == [], name
    object_props = schema["$defs"]["ObjectMapping"]["properties"]
    assert {"const": "all", "type": "string"} in object_props["fields"]["anyOf"]
    assert {"type": "string", "pattern": r"^\s*\d+\s*[smhd]?\s*$"} in object_props["poll_interval"]["anyOf"]
    assert "schema" in schema["$defs"]["DatabaseOptions"]["properties"]


def test_models_validate_from_python_too():
    mapping = Mapping.model_validate({"version": 1, "objects": {"Opportunity": {
        "direction": "read_write", "external_id": "Portal_Id__c", "poll_interval": "1m"}}})
    assert mapping.objects["Opportunity"].poll_interval == 60


def test_a_dumped_mapping_loads_again_as_the_same_mapping():
    mapping = load_mapping()
    dumped = mapping.model_dump(by_alias=True)
    assert dumped["objects"]["Opportunity"]["fields"] == "all"
    assert dumped["objects"]["User"]["fields"] == {"include": ["Name", "Username", "Email", "IsActive", "Title"]}
    assert Mapping.model_validate(dumped) == mapping
