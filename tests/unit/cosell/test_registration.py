"""The deal-registration state machine: every status x target x actor combination against a table written out
here by hand, what each legal move writes (timestamps, reason, expiry), the preconditions a move needs, and
the clock's expiry."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from itertools import product

import pytest

from connector.cosell import (
    ACTORS,
    STATUSES,
    IllegalTransition,
    Registration,
    RegistrationStatus,
    allowed_targets,
    expire_due,
    reachable_targets,
    transition,
)

TODAY = date(2025, 3, 14)
AT = datetime(2025, 3, 14, 9, 30, tzinfo=timezone.utc)
EXPIRY = TODAY + timedelta(days=90)

# (from, to) -> (actor, action): the legal moves, written out independently of the implementation's table
LEGAL = {
    ("Draft", "Submitted"): ("partner", "submit"),
    ("Draft", "Withdrawn"): ("partner", "withdraw"),
    ("Submitted", "Withdrawn"): ("partner", "withdraw"),
    ("Rejected", "Submitted"): ("partner", "resubmit"),
    ("Submitted", "Under Review"): ("vendor", "start_review"),
    ("Under Review", "Approved"): ("vendor", "approve"),
    ("Under Review", "Rejected"): ("vendor", "reject"),
    ("Submitted", "Approved"): ("vendor", "approve"),
    ("Submitted", "Rejected"): ("vendor", "reject"),
    ("Approved", "Expired"): ("clock", "expire"),
}
WHO = {"partner": "a partner", "vendor": "the vendor", "clock": "the clock"}


def legal_kwargs(action: str) -> dict:
    """What each move needs to be allowed."""
    return {"reject": {"reason": "Duplicate of a partner referral"},
            "approve": {"expiry_date": EXPIRY, "today": TODAY},
            "expire": {"expiry_date": TODAY, "today": TODAY}}.get(action, {})


def test_the_status_list_is_the_orgs_picklist():
    assert STATUSES == ("Draft", "Submitted", "Under Review", "Approved", "Rejected", "Expired", "Withdrawn")
    assert ACTORS == ("partner", "vendor", "clock")


def check_move(current: str, target: str, actor: str) -> str | None:
    """What is wrong with transition(current, target, actor) against the table, or None."""
    expected = LEGAL.get((current, target))
    if expected is not None and expected[0] == actor:
        try:
            result = transition(current, target, actor, **legal_kwargs(expected[1]))
        except IllegalTransition as error:
            return f"refused a legal move: {error}"
        got = (result.previous, result.status, result.actor, result.action, result.changes["Status__c"])
        return None if got == (current, target, actor, expected[1], target) else f"wrong result {got}"
    try:
        # with everything a move could need, so only the table can refuse it
        transition(current, target, actor, reason="r", expiry_date=TODAY, today=TODAY)
    except IllegalTransition as error:
        message = str(error)
        if not message.startswith(f"{WHO[actor]} cannot move a registration from {current} to {target}: "):
            return f"message does not say who and what: {message!r}"
        if (error.current, error.target, error.actor) != (current, target, actor):
            return f"context missing on the error: {(error.current, error.target, error.actor)}"
        if current == target and not message.endswith(f"it is already {current}"):
            return f"message does not say it is already there: {message!r}"
        if expected is not None and f"only the {expected[0]}" not in message and "by the clock" not in message:
            return f"message does not say who may: {message!r}"
        return None
    return "allowed an illegal move"


@pytest.mark.parametrize("current", STATUSES)
def test_every_target_by_every_actor(current):
    """Table-driven over status x target x actor (one test per status, every combination checked and reported)."""
    wrong = {(current, target, actor): problem for target, actor in product(STATUSES, ACTORS)
             if (problem := check_move(current, target, actor)) is not None}
    assert wrong == {}


def test_allowed_targets_match_the_table():
    for current, actor in product(STATUSES, ACTORS):
        expected = tuple(t for t in STATUSES if LEGAL.get((current, t), ("",))[0] == actor)
        assert allowed_targets(current, actor) == expected, (current, actor)


def test_the_messages_read_as_a_channel_manager_would_say_them():
    def why(current, target, actor, **kwargs):
        with pytest.raises(IllegalTransition) as caught:
            transition(current, target, actor, **kwargs)
        return str(caught.value)

    assert why("Under Review", "Approved", "partner") == \
        "a partner cannot move a registration from Under Review to Approved: only the vendor decides"
    assert why("Draft", "Submitted", "vendor") == \
        "the vendor cannot move a registration from Draft to Submitted: only the partner submits a registration"
    assert why("Under Review", "Withdrawn", "partner").endswith(
        "once the vendor has started the review the partner can no longer withdraw it; "
        "the vendor can reject it instead")
    assert why("Approved", "Expired", "vendor").endswith("a registration expires only by the clock, at its expiry date")
    assert why("Expired", "Submitted", "partner").endswith(
        "Expired is final; the partner registers the deal again instead")
    assert why("Submitted", "Draft", "partner").endswith(
        "from Submitted a registration can only go to Withdrawn (by the partner) or Under Review, Approved or Rejected "
        "(by the vendor)")


def test_unknown_statuses_and_actors_name_the_valid_choices():
    with pytest.raises(ValueError, match="'Pending' is not a registration status; choose one of: Draft, Submitted"):
        transition("Pending", "Submitted", "partner")
    with pytest.raises(ValueError, match="'admin' is not an actor; choose one of: partner, vendor, clock"):
        allowed_targets("Draft", "admin")


# -- what the moves write -------------------------------------------------------------------------------------

def test_submit_stamps_submitted_at():
    result = transition("Draft", "Submitted", "partner", at=AT)
    assert dict(result.changes) == {"Status__c": "Submitted", "Submitted_At__c": AT}
    assert result.stamp == "Submitted_At__c" and not result.ends_review


def test_without_the_moment_the_stamp_is_named_but_not_invented():
    result = transition("Draft", "Submitted", "partner")
    assert dict(result.changes) == {"Status__c": "Submitted"} and result.stamp == "Submitted_At__c"


def test_resubmit_stamps_the_new_submission_and_clears_the_old_decision():
    result = transition("Rejected", "Submitted", "partner", at=AT)
    assert dict(result.changes) == {"Status__c": "Submitted", "Submitted_At__c": AT, "Decided_At__c": None,
                                    "Rejection_Reason__c": None}


def test_approve_sets_the_expiry_and_stamps_decided_at():
    result = transition("Under Review", "Approved", "vendor", expiry_date=EXPIRY, at=AT)
    assert dict(result.changes) == {"Status__c": "Approved", "Expiry_Date__c": EXPIRY, "Decided_At__c": AT}
    assert result.ends_review and result.stamp == "Decided_At__c"


def test_reject_keeps_the_reason_and_stamps_decided_at():
    result = transition("Submitted", "Rejected", "vendor", reason="  Customer already in a direct deal ", at=AT)
    assert dict(result.changes) == {"Status__c": "Rejected", "Rejection_Reason__c": "Customer already in a direct deal",
                                    "Decided_At__c": AT}
    assert result.ends_review


def test_start_review_and_withdraw_write_the_status_only():
    assert dict(transition("Submitted", "Under Review", "vendor", at=AT).changes) == {"Status__c": "Under Review"}
    withdraw = transition("Submitted", "Withdrawn", "partner", at=AT)
    assert dict(withdraw.changes) == {"Status__c": "Withdrawn"} and withdraw.stamp is None and withdraw.ends_review


def test_a_result_cannot_be_changed_after_the_fact():
    with pytest.raises(TypeError):
        transition("Draft", "Submitted", "partner").changes["Status__c"] = "Approved"  # type: ignore[index]


# -- preconditions --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("reason", [None, "", "   "])
def test_a_rejection_needs_a_reason(reason):
    with pytest.raises(IllegalTransition, match="a rejection needs a reason"):
        transition("Under Review", "Rejected", "vendor", reason=reason)


def test_a_rejection_reason_must_fit_the_field():
    transition("Under Review", "Rejected", "vendor", reason="x" * 255)
    with pytest.raises(IllegalTransition, match="has 256 characters; Rejection_Reason__c holds 255"):
        transition("Under Review", "Rejected", "vendor", reason="x" * 256)


def test_an_approval_needs_an_expiry_date_after_today():
    with pytest.raises(IllegalTransition, match="needs the expiry date"):
        transition("Under Review", "Approved", "vendor", today=TODAY)
    with pytest.raises(IllegalTransition, match="2025-03-14 is not after today"):
        transition("Under Review", "Approved", "vendor", expiry_date=TODAY, today=TODAY)
    # today comes from the moment of the move when only that is given
    with pytest.raises(IllegalTransition, match="is not after today"):
        transition("Under Review", "Approved", "vendor", expiry_date=TODAY, at=AT)
    transition("Under Review", "Approved", "vendor", expiry_date=TODAY + timedelta(days=1), today=TODAY)


def test_the_clock_expires_at_or_after_the_expiry_date_only():
    assert transition("Approved", "Expired", "clock", expiry_date=TODAY, today=TODAY).status == "Expired"
    late = transition("Approved", "Expired", "clock", expiry_date=TODAY, today=TODAY + timedelta(days=3))
    assert late.action == "expire"
    with pytest.raises(IllegalTransition, match="it expires on 2025-03-15, not before"):
        transition("Approved", "Expired", "clock", expiry_date=TODAY + timedelta(days=1), today=TODAY)
    with pytest.raises(IllegalTransition, match="no expiry date"):
        transition("Approved", "Expired", "clock", today=TODAY)
    with pytest.raises(ValueError, match="needs today's date"):
        transition("Approved", "Expired", "clock", expiry_date=TODAY)


def test_times_and_dates_are_checked():
    with pytest.raises(ValueError, match="timezone-aware"):
        transition("Draft", "Submitted", "partner", at=datetime(2025, 3, 14, 9, 30))
    with pytest.raises(ValueError, match="must be a date"):
        transition("Under Review", "Approved", "vendor", expiry_date=AT)  # type: ignore[arg-type]


def test_reachable_targets_follow_several_moves_by_the_given_actors():
    assert reachable_targets("Rejected", ["partner"]) == {"Submitted", "Withdrawn"}
    assert reachable_targets("Submitted", ["vendor", "clock"]) == {"Under Review", "Approved", "Rejected", "Expired"}
    assert reachable_targets("Under Review", ["partner", "clock"]) == set()
    assert reachable_targets("Withdrawn", ACTORS) == set()


# -- registrations and expiry ---------------------------------------------------------------------------------

def reg(key: str, status: str, expiry: date | None = None) -> Registration:
    return Registration(key=key, status=status, expiry_date=expiry)  # type: ignore[arg-type]


def test_expire_due_picks_approved_registrations_whose_date_has_come():
    regs = [reg("past", "Approved", TODAY - timedelta(days=1)), reg("today", "Approved", TODAY),
            reg("future", "Approved", TODAY + timedelta(days=1)), reg("no-date", "Approved"),
            reg("rejected", "Rejected", TODAY - timedelta(days=9)),
            reg("expired", "Expired", TODAY - timedelta(days=9))]
    assert [r.key for r in expire_due(regs, TODAY)] == ["past", "today"]
    for r in expire_due(regs, TODAY):  # each is a legal clock move
        transition(r.status, "Expired", "clock", expiry_date=r.expiry_date, today=TODAY)


def test_a_registration_from_a_deal_registration_record():
    record = {"Id": "a0BDm0000000001AAA", "Status__c": "Under Review", "Partner_Account__c": "001P",
              "End_Customer_Account__c": "001C", "Opportunity__c": "006O", "Expiry_Date__c": "2025-06-12",
              "Submitted_At__c": AT, "Decided_At__c": None, "Rejection_Reason__c": None,
              "Registered_Amount__c": Decimal("125000.00"), "Program__c": "Standard Deal Registration"}
    r = Registration.from_record(record)
    assert r.status is RegistrationStatus.UNDER_REVIEW and r.in_review and r.live
    assert r.expiry_date == date(2025, 6, 12) and r.registered_amount == Decimal("125000.00")
    with pytest.raises(ValueError, match="not a registration status"):
        Registration.from_record({**record, "Status__c": "Pending Approval"})
