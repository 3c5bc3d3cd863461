"""Participant roles, attribution and split types: the built-in sets, and an org's Role__c picklist extending
them with its own values, flagged as custom."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest
import yaml

from connector.cosell import ATTRIBUTIONS, ROLES, SPLIT_TYPES, Attribution, Role, RoleSet, SplitType, UnknownRole

ORG = Path(__file__).resolve().parents[3] / "connector" / "emulator" / "orgs" / "cosell_demo.yaml"


@cache
def org_objects() -> dict:
    # the C loader when there is one: the pure-Python one takes seconds over the whole org definition
    return yaml.load(ORG.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))["objects"]


def org_picklist(object_name: str, field: str) -> list:
    return org_objects()[object_name]["fields"][field]["values"]


def test_runtime_lists_come_from_the_types():
    assert ROLES == ("Vendor", "Cloud Provider", "System Integrator", "Reseller", "Distributor", "Referral Partner")
    assert ATTRIBUTIONS == ("Sourced", "Influenced", "Delivered")
    assert SPLIT_TYPES == ("Revenue", "Influence")
    assert Role.SYSTEM_INTEGRATOR == "System Integrator" and Attribution("Sourced") is Attribution.SOURCED
    assert SplitType.REVENUE == "Revenue"


def test_the_demo_orgs_picklists_match_the_built_in_sets():
    assert tuple(org_picklist("Co_Sell_Participant__c", "Role__c")) == ROLES
    assert tuple(org_picklist("Co_Sell_Participant__c", "Attribution__c")) == ATTRIBUTIONS
    assert tuple(org_picklist("Co_Sell_Participant__c", "Split_Type__c")) == SPLIT_TYPES
    roles = RoleSet.from_picklist(org_picklist("Co_Sell_Participant__c", "Role__c"))
    assert roles.custom == () and roles.values == ROLES


def test_org_values_extend_the_known_set_and_are_flagged_custom():
    # Account.Partner_Type__c in the demo org has a value no built-in role has
    roles = RoleSet.from_picklist(org_picklist("Account", "Partner_Type__c"))
    assert "Technology Alliance" in roles and roles.is_custom("Technology Alliance")
    assert roles.custom == ("Technology Alliance",)
    assert roles.require("Reseller").role is Role.RESELLER and not roles.is_custom("Reseller")
    assert "Vendor" in roles  # built-in roles stay known even where the org's picklist lacks them


def test_picklist_entries_in_every_mirrored_shape():
    @dataclass(frozen=True)
    class Entry:  # the shape of the schema mirror's PicklistEntry
        value: str
        label: str
        active: bool
        default: bool = False

    roles = RoleSet.from_picklist([
        "Managed Service Provider",
        {"value": "ISV", "label": "Independent Software Vendor", "active": False},
        Entry("Marketplace Seller", "Marketplace Seller", True),
        {"value": "Reseller", "label": "Value-Added Reseller"},
    ])
    assert roles.custom == ("Managed Service Provider", "ISV", "Marketplace Seller")
    isv = roles.require("ISV")
    assert isv.custom and isv.label == "Independent Software Vendor" and not isv.active  # kept: old records hold it
    assert roles.require("Reseller").label == "Value-Added Reseller" and roles.require("Reseller").role is Role.RESELLER


def test_values_match_exactly_rather_than_guessing():
    roles = RoleSet.from_picklist(["system integrator"])
    assert roles.is_custom("system integrator") and roles.require("System Integrator").role is Role.SYSTEM_INTEGRATOR


def test_an_unknown_role_names_the_valid_choices():
    roles = RoleSet.from_picklist(["Technology Alliance"])
    with pytest.raises(UnknownRole) as caught:
        roles.require("Hardware Partner")
    assert "'Hardware Partner' is not a participant role" in str(caught.value)
    assert "Referral Partner, Technology Alliance" in str(caught.value)
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("bad", ["", "   ", None, {"label": "no value"}])
def test_a_blank_picklist_value_is_refused(bad):
    with pytest.raises(ValueError, match="non-empty string"):
        RoleSet.from_picklist([bad])
