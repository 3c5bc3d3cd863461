"""The edit lock: while a registration is Submitted or Under Review, a partner's edits to the locked fields wait,
the rest apply at once, and when the review ends every held edit is applied exactly once (the latest value of
each field), never before. Checked by example and as a property over any sequence of edits and statuses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.cosell import LOCKED_FIELDS, STATUSES, EditLock

LOCK = EditLock()  # Deal_Registration__c
LOCKED = sorted(LOCK.fields)
FREE = ["Notes__c", "Status__c", "Name"]


def test_the_locked_fields_are_the_registered_terms():
    assert LOCKED_FIELDS["Deal_Registration__c"] == {"Opportunity__c", "Partner_Account__c", "End_Customer_Account__c",
                                                     "Registered_Amount__c", "Program__c", "CurrencyIsoCode"}
    assert LOCKED_FIELDS["Opportunity"] == {"Amount", "CloseDate", "AccountId", "CurrencyIsoCode"}
    assert "Status__c" not in LOCKED_FIELDS["Deal_Registration__c"]  # moved by the state machine, never held
    assert EditLock("Opportunity").fields == LOCKED_FIELDS["Opportunity"]
    assert EditLock("Co_Sell_Participant__c", frozenset({"Split_Percent__c"})).fields == {"Split_Percent__c"}
    with pytest.raises(ValueError, match="no locked fields are known for 'Contact'; pass fields= or use one of"):
        EditLock("Contact")


@pytest.mark.parametrize("status", STATUSES + (None,))
def test_only_submitted_and_under_review_lock(status):
    assert EditLock.locks(status) == (status in ("Submitted", "Under Review"))


def test_a_review_holds_locked_edits_and_releases_them_when_it_ends():
    lock = EditLock("Opportunity")
    now, held = lock.hold("Submitted", {"Amount": Decimal("120000.00"), "NextStep": "Demo on Friday"})
    assert now == {"NextStep": "Demo on Friday"} and held == {"Amount": Decimal("120000.00")}
    now, held = lock.hold("Under Review", {"Amount": Decimal("150000.00"), "CloseDate": date(2025, 9, 30)}, held)
    assert now == {} and held == {"Amount": Decimal("150000.00"), "CloseDate": date(2025, 9, 30)}
    assert lock.release("Under Review", held) == ({}, held)  # a sync cycle during the review sends nothing
    now, held = lock.release("Approved", held)
    assert now == {"Amount": Decimal("150000.00"), "CloseDate": date(2025, 9, 30)} and held == {}
    assert lock.release("Approved", held) == ({}, {})  # and only once


@pytest.mark.parametrize("status", ["Draft", "Approved", "Rejected", "Withdrawn", "Expired", None])
def test_outside_a_review_everything_applies_now(status):
    assert LOCK.hold(status, {"Program__c": "Renewal Protection", "Notes__c": "x"}) == (
        {"Program__c": "Renewal Protection", "Notes__c": "x"}, {})


def test_edits_held_earlier_go_out_with_the_next_edit_if_release_was_missed():
    now, held = LOCK.hold("Rejected", {"Registered_Amount__c": Decimal(2), "Notes__c": "n"},
                          {"Registered_Amount__c": Decimal(1), "Program__c": "Renewal Protection"})
    assert now == {"Registered_Amount__c": Decimal(2), "Program__c": "Renewal Protection", "Notes__c": "n"}
    assert held == {}


# -- the property ---------------------------------------------------------------------------------------------

values = st.integers(min_value=0, max_value=5)
edits = st.dictionaries(st.sampled_from(LOCKED + FREE), values, min_size=1, max_size=4).map(lambda c: ("edit", c))
status_changes = st.tuples(st.sampled_from(STATUSES + (None,)), st.booleans()).map(lambda s: ("status", s))


@settings(max_examples=100, deadline=None)
@given(start=st.sampled_from(STATUSES), steps=st.lists(st.one_of(edits, status_changes), max_size=30))
def test_held_edits_are_applied_exactly_once_when_the_review_ends_and_never_before(start, steps):
    """A sync loop over any sequence of partner edits and status changes (the caller may even skip a release).
    `partner` is what the partner wants, `applied` what was sent, `pending` the locked edits made under review
    and not yet sent."""
    status, held = start, {}
    partner: dict = {}
    applied: dict = {}
    pending: dict = {}
    for kind, step in steps:
        if kind == "edit":
            changes = step
            batch, held = LOCK.hold(status, changes, held)
            partner.update(changes)
            if EditLock.locks(status):
                pending.update({f: v for f, v in changes.items() if f in LOCK.fields})
        else:
            status, call_release = step
            if not call_release:
                continue
            changes = {}
            batch, held = LOCK.release(status, held)
        if EditLock.locks(status):
            # never sent early: a batch during a review carries no locked field, only the free ones just edited
            assert not batch.keys() & LOCK.fields
            assert batch == {f: v for f, v in changes.items() if f not in LOCK.fields}
        else:
            # the review is over: every pending edit goes out now, with its latest value, and nothing stays held
            assert held == {}
            assert pending.keys() <= batch.keys()
            assert {f: batch[f] for f in pending} == {f: partner[f] for f in pending}  # latest, if edited since
            for f in batch.keys() & LOCK.fields:  # exactly once: a locked field is sent again only if edited again
                assert f in pending or f in changes
            pending = {}
        applied.update(batch)
        # never lost: what was sent plus what waits is exactly what the partner wants
        assert {**applied, **held} == partner
        assert held.keys() <= LOCK.fields
