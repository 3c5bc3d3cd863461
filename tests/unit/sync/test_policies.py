"""Conflict policies: what each built-in decides (latest_wins ties and missing times, manual parking), and the
registry: lookups that name the valid choices, plug-ins whose names become valid in mapping files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

import connector.sync.policies as policies
from connector.mapping import BUILTIN_POLICIES, POLICY_NAMES, MappingError, load_mapping
from connector.sync.policies import (
    POLICIES,
    FieldConflict,
    Resolution,
    UnknownPolicy,
    get_policy,
    register_policy,
)

EARLY = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)
LATE = datetime(2024, 5, 1, 9, 0, 1, tzinfo=timezone.utc)


@pytest.fixture
def isolated_registry(monkeypatch):
    """Policies registered in a test are gone after it: both registries are process-wide, and the mapping
    tests expect exactly the built-in names."""
    saved = dict(policies._REGISTRY)
    yield
    policies._REGISTRY.clear()
    policies._REGISTRY.update(saved)


def conflict(local_at: datetime | None = EARLY, remote_at: datetime | None = LATE) -> FieldConflict:
    return FieldConflict(object_name="Opportunity", record_key="006000000000001AAA", field="StageName",
                         base="Prospecting", local="Negotiation", remote="Closed Won",
                         local_changed_at=local_at, remote_changed_at=remote_at)


@dataclass(frozen=True)
class KeepBase:
    """A plug-in that restores the last agreed value, like a state machine refusing an illegal move."""

    name: str = "test_keep_base"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        return Resolution("salesforce", conflict.base, reason="neither move is legal; base restored")


# -- the built-ins -------------------------------------------------------------------------------------------

def test_the_built_ins_are_registered_under_the_mapping_names():
    assert set(BUILTIN_POLICIES) <= set(POLICIES)
    assert all(POLICIES[name].name == name for name in BUILTIN_POLICIES)


def test_salesforce_wins_keeps_salesforces_value():
    resolution = get_policy("salesforce_wins").resolve(conflict(local_at=LATE, remote_at=EARLY))
    assert (resolution.winner, resolution.value, resolution.parked) == ("salesforce", "Closed Won", False)
    assert "salesforce_wins" in resolution.reason


def test_local_wins_keeps_the_local_value():
    resolution = get_policy("local_wins").resolve(conflict(local_at=EARLY, remote_at=LATE))
    assert (resolution.winner, resolution.value, resolution.parked) == ("local", "Negotiation", False)
    assert "local_wins" in resolution.reason


@pytest.mark.parametrize("local_at, remote_at, winner, value, words", [
    (LATE, EARLY, "local", "Negotiation", "local changed later"),
    (EARLY, LATE, "salesforce", "Closed Won", "Salesforce changed later"),
    (LATE, None, "local", "Negotiation", "Salesforce's change time is unknown"),
    (None, LATE, "salesforce", "Closed Won", "the local change time is unknown"),
    (EARLY, EARLY, "salesforce", "Closed Won",
     "a tie (both changed at 2024-05-01T09:00:00+00:00); ties go to Salesforce"),
    (None, None, "salesforce", "Closed Won", "a tie (neither change time is known); ties go to Salesforce"),
])
def test_latest_wins_by_change_time(local_at, remote_at, winner, value, words):
    resolution = get_policy("latest_wins").resolve(conflict(local_at, remote_at))
    assert (resolution.winner, resolution.value, resolution.parked) == (winner, value, False)
    assert words in resolution.reason


def test_latest_wins_compares_instants_not_clock_readings():
    # 11:00 in Paris (UTC+2) is earlier than 09:00:01 UTC
    paris = datetime(2024, 5, 1, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    assert get_policy("latest_wins").resolve(conflict(local_at=paris, remote_at=LATE)).winner == "salesforce"
    tie = get_policy("latest_wins").resolve(conflict(local_at=paris, remote_at=EARLY))
    assert tie.winner == "salesforce" and "tie" in tie.reason


def test_manual_keeps_salesforces_value_for_now_and_parks_the_conflict():
    resolution = get_policy("manual").resolve(conflict(local_at=LATE, remote_at=EARLY))
    assert (resolution.winner, resolution.value, resolution.parked) == ("salesforce", "Closed Won", True)
    assert "admin" in resolution.reason


def test_change_times_must_be_timezone_aware():
    with pytest.raises(ValueError, match="local_changed_at must be a timezone-aware datetime"):
        conflict(local_at=datetime(2024, 5, 1, 9, 0))
    with pytest.raises(ValueError, match="remote_changed_at must be a timezone-aware datetime"):
        conflict(remote_at=datetime(2024, 5, 1, 9, 0))


def test_a_resolution_names_a_known_winner():
    with pytest.raises(ValueError, match="'both' is not a winner; choose one of: local, salesforce"):
        Resolution("both", 1)  # type: ignore[arg-type]


# -- the registry ------------------------------------------------------------------------------------------

def test_an_unknown_policy_names_the_registered_ones():
    with pytest.raises(KeyError) as info:
        get_policy("newest")
    assert isinstance(info.value, UnknownPolicy)
    message = str(info.value)
    assert message.startswith("'newest' is not a registered conflict policy; choose one of: ")
    # The built-ins are always listed; plug-ins registered by then (the co-sell ones) are listed too.
    assert all(name in message for name in ("latest_wins", "local_wins", "manual", "salesforce_wins"))


def test_registering_a_policy_makes_it_available_and_valid_in_mapping_files(isolated_registry, tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text("version: 1\nobjects:\n  Deal_Registration__c:\n    direction: read_write\n"
                    "    external_id: Portal_Id__c\n    field_policies: {Status__c: test_keep_base}\n")
    with pytest.raises(MappingError, match="'test_keep_base' is not a conflict policy"):
        load_mapping(path)
    policy = KeepBase()
    assert register_policy(policy) is policy
    assert get_policy("test_keep_base") is policy and POLICIES["test_keep_base"] is policy
    assert "test_keep_base" in POLICY_NAMES
    assert load_mapping(path).objects["Deal_Registration__c"].policy_for("Status__c") == "test_keep_base"
    resolution = policy.resolve(conflict())
    assert (resolution.winner, resolution.value) == ("salesforce", "Prospecting")  # neither side's value


def test_registering_the_same_policy_again_is_harmless(isolated_registry):
    register_policy(KeepBase())
    register_policy(KeepBase())  # an equal object, e.g. from a plug-in module imported twice
    assert POLICIES["test_keep_base"] == KeepBase()


def test_a_different_policy_cannot_take_a_registered_name(isolated_registry):
    register_policy(KeepBase())
    with pytest.raises(ValueError, match="a different conflict policy is already registered as 'test_keep_base'"):
        register_policy(policies.LocalWins(name="test_keep_base"))
    with pytest.raises(ValueError, match="already registered as 'manual'"):
        register_policy(KeepBase(name="manual"))
    assert get_policy("manual") == policies.Manual()


def test_a_name_the_mapping_would_refuse_is_not_registered(isolated_registry):
    with pytest.raises(ValueError, match="not a usable policy name"):
        register_policy(KeepBase(name="Keep Base"))
    assert "Keep Base" not in POLICIES and "Keep Base" not in POLICY_NAMES


def test_something_without_resolve_is_not_a_policy(isolated_registry):
    with pytest.raises(TypeError, match="needs a `name` .* and a `resolve"):
        register_policy(object())  # type: ignore[arg-type]


def test_the_registry_view_is_read_only():
    with pytest.raises(TypeError):
        POLICIES["mine"] = KeepBase()  # type: ignore[index]
