"""Domain rules plug into the engine through its public methods, for the objects the mapping names:
the co-sell guards follow the mapping's `cosell:` section instead of assuming object names."""

from __future__ import annotations

import textwrap

import pytest

from connector.mapping import MappingError, load_mapping
from connector.sync.cosell_rules import CosellRules
from connector.sync.rules import SyncRules


class Recorder:
    """What an engine is told by a plug-in: the guards it adds, per object."""

    def __init__(self, mapping):
        self.mapping, self.push, self.remote = mapping, {}, {}

    def add_push_guard(self, name, guard):
        self.push.setdefault(name, []).append(guard)

    def add_remote_guard(self, name, guard):
        self.remote.setdefault(name, []).append(guard)


def mapping(tmp_path, cosell: str = ""):
    path = tmp_path / "mapping.yaml"
    path.write_text(textwrap.dedent(f"""\
        version: 1
        defaults: {{direction: read_write}}
        objects:
          Opportunity: {{external_id: Portal_Id__c}}
          Partner_Part__c: {{external_id: Portal_Id__c}}
          Deal_Registration__c: {{external_id: Portal_Id__c}}
          Co_Sell_Participant__c: {{direction: read_only}}
        """) + cosell)
    return load_mapping(path)


def test_the_co_sell_guards_go_to_the_objects_the_mapping_names(tmp_path):
    m = mapping(tmp_path, "cosell: {participant: Partner_Part__c}\n")
    engine = Recorder(m)
    rules = CosellRules(m.cosell)
    assert isinstance(rules, SyncRules)
    rules.install(engine)
    assert set(engine.push) == {"Opportunity", "Partner_Part__c", "Deal_Registration__c"}
    assert set(engine.remote) == {"Deal_Registration__c"}
    assert "Co_Sell_Participant__c" not in engine.push, "not the participant role here, and read_only"


def test_a_role_whose_object_is_not_synced_both_ways_gets_no_guard(tmp_path):
    engine = Recorder(mapping(tmp_path))   # defaults: Co_Sell_Participant__c, which is read_only here
    CosellRules(engine.mapping.cosell).install(engine)
    assert set(engine.push) == {"Opportunity", "Deal_Registration__c"}


def test_a_bad_role_name_is_a_clear_mapping_error(tmp_path):
    with pytest.raises(MappingError, match=r"cosell\.participant: 'Partner Part' is not a Salesforce API name"):
        mapping(tmp_path, "cosell: {participant: Partner Part}\n")
    with pytest.raises(MappingError, match=r"cosell\.deal"):
        mapping(tmp_path, "cosell: {deal: Opportunity}\n")
