"""The co-sell conflict policies: registered by name on import, the registration state machine deciding a status
changed on both sides (every base x local x remote combination), and edit-vs-delete on participants, also as
the three-way merge applies them."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from itertools import product

import pytest

from connector.cosell import STATUSES, reachable_targets
from connector.mapping import POLICY_NAMES
from connector.sync.merge import merge_record
from connector.sync.policies import FieldConflict, Resolution, get_policy

pytestmark = pytest.mark.usefixtures("cosell_policies")

EARLY = datetime(2025, 3, 14, 9, 0, tzinfo=timezone.utc)
LATE = datetime(2025, 3, 14, 10, 0, tzinfo=timezone.utc)
REG = "a0BDm0000000001AAA"


def status_conflict(base, local, remote, field: str | None = "Status__c") -> FieldConflict:
    return FieldConflict("Deal_Registration__c", REG, field, base, local, remote, EARLY, LATE)


def decide(base, local, remote) -> Resolution:
    return get_policy("registration_status").resolve(status_conflict(base, local, remote))


def test_the_policies_are_registered_and_valid_in_mapping_files(cosell_policies):
    assert cosell_policies.COSELL_POLICY_NAMES == (
        "registration_status", "participant_edit_wins", "participant_delete_wins")
    for name in cosell_policies.COSELL_POLICY_NAMES:
        assert get_policy(name).name == name and name in POLICY_NAMES


# -- registration_status ----------------------------------------------------------------------------------------

def test_a_vendor_decision_stands_over_a_partners_concurrent_edit():
    resolution = decide("Submitted", "Withdrawn", "Approved")
    assert (resolution.winner, resolution.value, resolution.parked) == ("salesforce", "Approved", False)
    assert resolution.reason == ("policy registration_status: the vendor's Submitted -> Approved in Salesforce stands "
                                 "over the partner's concurrent Submitted -> Withdrawn; a vendor decision outranks a "
                                 "partner's edit")
    assert decide("Submitted", "Withdrawn", "Under Review").value == "Under Review"


def test_a_partner_only_move_made_in_salesforce_loses_to_the_portals_legal_move():
    resolution = decide("Draft", "Withdrawn", "Submitted")  # someone submitted in Salesforce for the partner
    assert (resolution.winner, resolution.value) == ("local", "Withdrawn")
    assert "Salesforce's Draft -> Submitted is not a move the vendor can make" in resolution.reason


def test_a_legal_vendor_move_beats_an_illegal_portal_one():
    resolution = decide("Submitted", "Approved", "Under Review")  # the portal approved its own registration
    assert (resolution.winner, resolution.value) == ("salesforce", "Under Review")
    assert "the portal's Submitted -> Approved is not a move a partner can make" in resolution.reason


def test_when_neither_move_is_legal_the_base_is_restored():
    resolution = decide("Draft", "Under Review", "Approved")
    assert (resolution.winner, resolution.value) == ("salesforce", "Draft")
    assert resolution.reason == ("policy registration_status: neither Salesforce's Draft -> Approved (not a vendor "
                                 "move) nor the portal's Draft -> Under Review (not a partner move) is legal; Draft "
                                 "is restored on both sides")


def test_several_moves_on_one_side_between_syncs_count():
    # the partner resubmitted and then withdrew; Salesforce approved a rejected registration, which no one can
    assert decide("Rejected", "Withdrawn", "Approved").value == "Withdrawn"
    # the vendor approved and the clock expired it, while the portal tried to move it back to Draft
    assert decide("Submitted", "Draft", "Expired").value == "Expired"


def test_the_clock_may_expire_on_either_side():
    assert decide("Approved", "Expired", "Withdrawn").value == "Expired"
    assert decide("Approved", "Rejected", "Expired").value == "Expired"


def test_a_value_that_is_no_status_is_never_a_legal_move():
    assert decide("Submitted", "Approvd", "Under Review").value == "Under Review"
    assert decide("Submitted", "Withdrawn", None).value == "Withdrawn"
    assert decide("Submitted", "bogus", "bogus too").value == "Submitted"


def test_without_an_agreed_status_salesforce_stands():
    resolution = decide(None, "Draft", "Submitted")
    assert (resolution.winner, resolution.value) == ("salesforce", "Submitted")
    assert "no agreed status to judge the moves from" in resolution.reason


def test_every_combination_ends_in_a_legal_status_for_its_side_or_the_base():
    """Exhaustive: whatever both sides did, the result is the base or a status that side could reach."""
    for base, local, remote in product(STATUSES, repeat=3):
        if len({base, local, remote}) < 3:
            continue  # one side unchanged, or both agree: the merge never asks a policy
        resolution = decide(base, local, remote)
        assert resolution == decide(base, local, remote)  # deterministic
        side_ok = {"salesforce": remote in reachable_targets(base, ["vendor", "clock"]),
                   "local": local in reachable_targets(base, ["partner", "clock"])}
        if resolution.value == base:
            assert resolution.winner == "salesforce" and not any(side_ok.values()), (base, local, remote)
        else:
            assert resolution.value == (remote if resolution.winner == "salesforce" else local)
            assert side_ok[resolution.winner], (base, local, remote)
            if side_ok["salesforce"]:
                assert resolution.winner == "salesforce", (base, local, remote)


def test_on_other_fields_it_falls_back_to_latest_wins():
    resolution = get_policy("registration_status").resolve(
        FieldConflict("Deal_Registration__c", REG, "Program__c", "Standard Deal Registration",
                      "Renewal Protection", "Marketplace Private Offer", EARLY, LATE))
    assert (resolution.winner, resolution.value) == ("salesforce", "Marketplace Private Offer")
    assert resolution.reason.startswith("policy registration_status: Program__c holds no registration status, so "
                                        "policy latest_wins: Salesforce changed later")


def test_as_a_record_policy_the_edit_wins():
    edited = {"Status__c": "Submitted"}
    assert get_policy("registration_status").resolve(status_conflict({}, edited, None, field=None)).winner == "local"
    assert get_policy("registration_status").resolve(status_conflict({}, None, edited, field=None)).winner == \
        "salesforce"


def test_through_the_merge_a_restored_base_is_written_to_both_sides():
    fields = ("Status__c", "Rejection_Reason__c")
    base = {"Status__c": "Draft", "Rejection_Reason__c": None}
    result = merge_record(object_name="Deal_Registration__c", record_key=REG, fields=fields, base=base,
                          local={**base, "Status__c": "Under Review"}, remote={**base, "Status__c": "Approved"},
                          local_state="present", remote_state="present",
                          policy_for=lambda f: "registration_status" if f == "Status__c" else "latest_wins",
                          record_policy="latest_wins", local_changed_at=EARLY, remote_changed_at=LATE,
                          remote_writable=fields)
    assert result.to_local == {"Status__c": "Draft"} and result.to_remote == {"Status__c": "Draft"}
    [conflict] = result.conflicts
    assert (conflict.policy, conflict.winner, conflict.value) == ("registration_status", "salesforce", "Draft")


# -- participants: edit vs delete -------------------------------------------------------------------------------

PARTICIPANT = "a0ADm0000000001AAA"
BASE = {"Role__c": "Reseller", "Split_Type__c": "Revenue", "Split_Percent__c": Decimal("50.00")}
EDITED = {**BASE, "Split_Percent__c": Decimal("60.00")}


def record_conflict(local, remote) -> FieldConflict:
    return FieldConflict("Co_Sell_Participant__c", PARTICIPANT, None, BASE, local, remote, EARLY, LATE)


@pytest.mark.parametrize(("local", "remote", "edit_winner", "delete_winner"), [
    (EDITED, None, "local", "salesforce"),   # edited in the portal, deleted in Salesforce
    (None, EDITED, "salesforce", "local"),   # deleted in the portal, edited in Salesforce
])
def test_participant_edit_wins_and_delete_wins(local, remote, edit_winner, delete_winner):
    edit = get_policy("participant_edit_wins").resolve(record_conflict(local, remote))
    assert edit.winner == edit_winner and edit.value == EDITED and "restored" in edit.reason
    delete = get_policy("participant_delete_wins").resolve(record_conflict(local, remote))
    assert delete.winner == delete_winner and delete.value is None and "deleted" in delete.reason


@pytest.mark.parametrize(("policy", "action"), [("participant_edit_wins", "restore_remote"),
                                                ("participant_delete_wins", "delete_local")])
def test_through_the_merge_edit_vs_delete_follows_the_policy(policy, action):
    fields = tuple(BASE)
    result = merge_record(object_name="Co_Sell_Participant__c", record_key=PARTICIPANT, fields=fields, base=BASE,
                          local=EDITED, remote=None, local_state="present", remote_state="deleted",
                          policy_for=lambda f: policy, record_policy=policy, local_changed_at=EARLY,
                          remote_changed_at=LATE, remote_writable=fields)
    assert result.action == action and result.conflicts[0].policy == policy
    if action == "restore_remote":
        assert result.to_remote == EDITED


@pytest.mark.parametrize("name", ["participant_edit_wins", "participant_delete_wins"])
def test_participant_policies_send_field_conflicts_to_latest_wins(name):
    resolution = get_policy(name).resolve(FieldConflict("Co_Sell_Participant__c", PARTICIPANT, "Split_Percent__c",
                                                        Decimal(50), Decimal(60), Decimal(40), LATE, EARLY))
    assert (resolution.winner, resolution.value) == ("local", Decimal(60))
    assert resolution.reason.startswith(f"policy {name} decides edit vs delete; for field Split_Percent__c, "
                                        "policy latest_wins: local changed later")


@pytest.mark.parametrize("name", ["participant_edit_wins", "participant_delete_wins"])
def test_a_record_conflict_that_is_not_edit_vs_delete_keeps_salesforce(name):
    resolution = get_policy(name).resolve(record_conflict(EDITED, BASE))
    assert (resolution.winner, resolution.value) == ("salesforce", BASE)
