"""The three-way merge of one record: every branch (field changes, one-way fields, new records, deletes and
edit-vs-delete under each policy) checked on its writes and its conflict log, then the invariants as properties:
convergence, no silent loss, and a one-sided change taken as is."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import connector.sync.policies as policies
from connector.mapping import BUILTIN_POLICIES
from connector.sync.merge import (
    READ_ONLY_POLICY,
    READ_ONLY_REASON,
    RECORD_STATES,
    Conflict,
    MergeResult,
    merge_record,
    values_equal,
)
from connector.sync.policies import FieldConflict, Resolution, UnknownPolicy, register_policy

T_LOCAL = datetime(2024, 5, 1, 10, 0, tzinfo=timezone.utc)
T_REMOTE = datetime(2024, 5, 1, 11, 0, tzinfo=timezone.utc)

KEY = "006000000000001AAA"
FIELDS = ("Name", "Amount", "StageName", "CloseDate", "ExpectedRevenue")
WRITABLE = ("Name", "Amount", "StageName", "CloseDate")  # ExpectedRevenue is computed by Salesforce
BASE = {"Name": "Acme renewal", "Amount": Decimal("1000.00"), "StageName": "Prospecting",
        "CloseDate": date(2024, 6, 30), "ExpectedRevenue": Decimal("100.00")}


def merge(*, local: dict[str, Any] | None = None, remote: dict[str, Any] | None = None,
          base: dict[str, Any] | None = BASE, policy: str = "salesforce_wins", **kwargs: Any) -> MergeResult:
    """merge_record on an Opportunity: `local`/`remote` are changes over the base; one policy for all."""
    args: dict[str, Any] = dict(
        object_name="Opportunity", record_key=KEY, fields=FIELDS, base=base,
        local=None if local is None else {**(base or {}), **local},
        remote=None if remote is None else {**(base or {}), **remote},
        local_state="present" if local is not None else "absent",
        remote_state="present" if remote is not None else "absent",
        policy_for=lambda field: policy, record_policy=policy,
        local_changed_at=T_LOCAL, remote_changed_at=T_REMOTE, remote_writable=WRITABLE)
    args.update(kwargs)
    return merge_record(**args)


def field_conflict(field: str, local: Any, remote: Any, *, policy: str, winner: str, value: Any,
                   parked: bool = False, reason: str | None = None, base: Any = ...) -> Conflict:
    return Conflict(field=field, base=BASE[field] if base is ... else base, local=local, remote=remote,
                    local_changed_at=T_LOCAL, remote_changed_at=T_REMOTE, policy=policy, winner=winner,
                    value=value, parked=parked,
                    reason=policies.get_policy(policy).resolve(_context(field, local, remote)).reason
                    if reason is None else reason)


def _context(field: str, local: Any, remote: Any) -> FieldConflict:
    return FieldConflict("Opportunity", KEY, field, BASE.get(field), local, remote, T_LOCAL, T_REMOTE)


@dataclass(frozen=True)
class RestoreBase:
    """A plug-in policy whose value is neither side's: it puts back the last agreed value."""

    name: str = "test_restore_base"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        return Resolution("salesforce", conflict.base, reason="restored the last legal value")


@contextmanager
def registered(*extra: Any):
    """Register plug-in policies for one test only: both registries are process-wide, and the mapping tests
    expect exactly the built-in names."""
    saved_policies = dict(policies._REGISTRY)
    try:
        for policy in extra:
            register_policy(policy)
        yield
    finally:
        policies._REGISTRY.clear()
        policies._REGISTRY.update(saved_policies)


# -- comparing values ---------------------------------------------------------------------------------------

MOMENT = datetime(2024, 5, 1, 9, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("a, b, equal", [
    (None, None, True),
    (None, "", False),
    (None, 0, False),
    (Decimal("1.50"), Decimal("1.5"), True),
    (Decimal("1.5"), 1.5, True),
    (Decimal("0.1"), 0.1, True),
    (Decimal("2"), 2, True),
    (2, 2.0, True),
    (Decimal("1.5"), Decimal("1.51"), False),
    (Decimal("0.10000000000000000001"), 0.1, False),  # no rounding through a float
    (Decimal("NaN"), float("nan"), True),
    (Decimal("NaN"), Decimal("1"), False),
    ("1.5", Decimal("1.5"), False),
    ("a", "a", True),
    ("a", "A", False),
    ("a", "a ", False),
    (True, True, True),
    (True, 1, False),
    (False, 0, False),
    (date(2024, 5, 1), date(2024, 5, 1), True),
    (date(2024, 5, 1), datetime(2024, 5, 1), False),
    (MOMENT, MOMENT.astimezone(timezone(timedelta(hours=2))), True),
    (MOMENT, MOMENT + timedelta(microseconds=1), False),
    (MOMENT, MOMENT.replace(tzinfo=None), False),
    (["a", "b"], ["a", "b"], True),
])
def test_values_equal(a, b, equal):
    assert values_equal(a, b) is equal
    assert values_equal(b, a) is equal


# -- both present: per field ------------------------------------------------------------------------------

def test_nothing_changed_is_a_noop_that_keeps_the_base():
    assert merge(local={}, remote={}) == MergeResult("noop", merged=BASE, to_local={}, to_remote={}, conflicts=())


def test_a_salesforce_change_is_taken_locally():
    result = merge(local={}, remote={"StageName": "Qualification", "ExpectedRevenue": Decimal("200.00")})
    assert result == MergeResult("update", merged={**BASE, "StageName": "Qualification",
                                                   "ExpectedRevenue": Decimal("200.00")},
                                 to_local={"StageName": "Qualification", "ExpectedRevenue": Decimal("200.00")},
                                 to_remote={}, conflicts=())


def test_a_local_change_of_a_writable_field_is_sent_to_salesforce():
    result = merge(local={"Amount": Decimal("1500.00")}, remote={})
    assert result == MergeResult("update", merged={**BASE, "Amount": Decimal("1500.00")}, to_local={},
                                 to_remote={"Amount": Decimal("1500.00")}, conflicts=())


def test_changes_to_different_fields_on_each_side_are_both_taken():
    result = merge(local={"Amount": Decimal("1500.00")}, remote={"StageName": "Qualification"})
    assert result.merged == {**BASE, "Amount": Decimal("1500.00"), "StageName": "Qualification"}
    assert (result.action, result.to_local, result.to_remote, result.conflicts) == \
        ("update", {"StageName": "Qualification"}, {"Amount": Decimal("1500.00")}, ())


def test_a_local_edit_of_a_one_way_field_is_overwritten_and_logged():
    result = merge(local={"ExpectedRevenue": Decimal("999.00")}, remote={}, policy="local_wins")
    assert result == MergeResult(
        "update", merged=BASE, to_local={"ExpectedRevenue": Decimal("100.00")}, to_remote={},
        conflicts=(field_conflict("ExpectedRevenue", Decimal("999.00"), Decimal("100.00"), policy=READ_ONLY_POLICY,
                                  winner="salesforce", value=Decimal("100.00"), reason=READ_ONLY_REASON),))
    assert READ_ONLY_REASON == "field is read-only in Salesforce"


def test_both_sides_changing_a_one_way_field_differently_is_won_by_salesforce_whatever_the_policy():
    result = merge(local={"ExpectedRevenue": Decimal("1.00")}, remote={"ExpectedRevenue": Decimal("2.00")},
                   policy="local_wins")
    assert (result.action, result.to_local, result.to_remote) == ("update", {"ExpectedRevenue": Decimal("2.00")}, {})
    assert result.merged["ExpectedRevenue"] == Decimal("2.00")
    assert result.conflicts == (field_conflict("ExpectedRevenue", Decimal("1.00"), Decimal("2.00"),
                                               policy=READ_ONLY_POLICY, winner="salesforce", value=Decimal("2.00"),
                                               reason=READ_ONLY_REASON),)


@pytest.mark.parametrize("local, remote", [
    ("Closed Won", "Closed Won"),
    (Decimal("1500.50"), Decimal("1500.5")),
])
def test_both_sides_changing_a_field_to_the_same_value_is_no_conflict(local, remote):
    field = "StageName" if isinstance(local, str) else "Amount"
    result = merge(local={field: local}, remote={field: remote}, policy="manual")
    assert result == MergeResult("noop", merged={**BASE, field: remote}, to_local={}, to_remote={}, conflicts=())


@pytest.mark.parametrize("policy, winner, value, parked", [
    ("salesforce_wins", "salesforce", "Closed Won", False),
    ("local_wins", "local", "Negotiation", False),
    ("latest_wins", "salesforce", "Closed Won", False),  # Salesforce's change is an hour later
    ("manual", "salesforce", "Closed Won", True),
])
def test_both_sides_changing_a_field_differently_is_resolved_by_its_policy_and_logged(policy, winner, value, parked):
    result = merge(local={"StageName": "Negotiation"}, remote={"StageName": "Closed Won"}, policy=policy)
    assert result.action == "update"
    assert result.merged == {**BASE, "StageName": value}
    assert result.to_local == ({} if value == "Negotiation" else {"StageName": value})
    assert result.to_remote == ({"StageName": value} if value == "Negotiation" else {})
    assert result.conflicts == (field_conflict("StageName", "Negotiation", "Closed Won", policy=policy,
                                               winner=winner, value=value, parked=parked),)
    assert result.conflicts[0].local_changed_at == T_LOCAL and result.conflicts[0].remote_changed_at == T_REMOTE


def test_latest_wins_takes_the_local_value_when_it_is_later():
    result = merge(local={"StageName": "Negotiation"}, remote={"StageName": "Closed Won"}, policy="latest_wins",
                   local_changed_at=T_REMOTE + timedelta(seconds=1))
    assert (result.to_local, result.to_remote) == ({}, {"StageName": "Negotiation"})
    assert result.conflicts[0].winner == "local"
    assert result.conflicts[0].local_changed_at == T_REMOTE + timedelta(seconds=1)


def test_each_field_uses_its_own_policy():
    per_field = {"Amount": "local_wins", "StageName": "salesforce_wins"}
    result = merge(local={"Amount": Decimal("1.00"), "StageName": "Negotiation"},
                   remote={"Amount": Decimal("2.00"), "StageName": "Closed Won"}, policy_for=per_field.get)
    assert (result.to_local, result.to_remote) == ({"StageName": "Closed Won"}, {"Amount": Decimal("1.00")})
    assert [(c.field, c.policy, c.winner) for c in result.conflicts] == \
        [("Amount", "local_wins", "local"), ("StageName", "salesforce_wins", "salesforce")]


def test_a_policy_value_that_is_neither_sides_is_written_to_both():
    with registered(RestoreBase()):
        result = merge(local={"StageName": "Negotiation"}, remote={"StageName": "Closed Won"},
                       policy="test_restore_base")
    assert result == MergeResult(
        "update", merged=BASE, to_local={"StageName": "Prospecting"}, to_remote={"StageName": "Prospecting"},
        conflicts=(field_conflict("StageName", "Negotiation", "Closed Won", policy="test_restore_base",
                                  winner="salesforce", value="Prospecting", reason="restored the last legal value"),))


def test_a_local_row_that_capture_says_is_clean_is_not_a_local_edit():
    # a difference from base that capture does not vouch for is drift: Salesforce's agreed value puts it back
    result = merge(local={"Amount": Decimal("7.00"), "StageName": "Negotiation"}, remote={"StageName": "Closed Won"},
                   policy="local_wins", local_dirty=False)
    assert result == MergeResult("update", merged={**BASE, "StageName": "Closed Won"},
                                 to_local={"Amount": Decimal("1000.00"), "StageName": "Closed Won"},
                                 to_remote={}, conflicts=())


def test_a_newly_mapped_field_missing_from_base_agrees_when_equal_and_conflicts_when_not():
    base = {f: v for f, v in BASE.items() if f not in ("Name", "StageName")}
    result = merge(base=base, local={"Name": "Acme", "StageName": "Negotiation"},
                   remote={"Name": "Acme", "StageName": "Closed Won"})
    assert (result.to_local, result.to_remote) == ({"StageName": "Closed Won"}, {})
    assert result.conflicts == (field_conflict("StageName", "Negotiation", "Closed Won", policy="salesforce_wins",
                                               winner="salesforce", value="Closed Won", base=None),)


def test_an_unknown_policy_names_the_registered_ones():
    with pytest.raises(UnknownPolicy) as info:
        merge(local={"StageName": "Negotiation"}, remote={"StageName": "Closed Won"}, policy="newest")
    message = str(info.value)
    assert message.startswith("'newest' is not a registered conflict policy; choose one of: ")
    # The built-ins are always listed; plug-ins registered by then (the co-sell ones) are listed too.
    assert all(name in message for name in ("latest_wins", "local_wins", "manual", "salesforce_wins"))


def test_a_policy_must_return_a_resolution():
    @dataclass(frozen=True)
    class Sloppy:
        name: str = "test_sloppy"

        def resolve(self, conflict: FieldConflict) -> Any:
            return conflict.local

    with registered(Sloppy()), pytest.raises(TypeError, match="'test_sloppy' returned 'Negotiation' instead"):
        merge(local={"StageName": "Negotiation"}, remote={"StageName": "Closed Won"}, policy="test_sloppy")


def test_the_same_inputs_give_the_same_result_in_field_order():
    args = dict(local={"StageName": "Negotiation", "Name": "A"}, remote={"StageName": "Closed Won", "Name": "B"})
    first, second = merge(**args), merge(**args)
    assert first == second
    assert [c.field for c in first.conflicts] == ["Name", "StageName"]
    assert list(first.merged) == list(FIELDS)


# -- new records --------------------------------------------------------------------------------------------

NEW = {"Name": "New deal", "Amount": None, "StageName": "Prospecting", "CloseDate": date(2024, 9, 1),
       "ExpectedRevenue": Decimal("5.00")}


def test_a_record_new_locally_is_created_in_salesforce_with_its_writable_non_null_values():
    result = merge(base=None, local=NEW, remote=None)
    assert result == MergeResult("create_remote", merged=NEW,
                                 to_local={}, to_remote={"Name": "New deal", "StageName": "Prospecting",
                                                         "CloseDate": date(2024, 9, 1)}, conflicts=())


def test_a_record_new_in_salesforce_is_created_locally_with_every_field():
    result = merge(base=None, local=None, remote=NEW)
    assert result == MergeResult("create_local", merged=NEW, to_local=NEW, to_remote={}, conflicts=())


@pytest.mark.parametrize("local_dirty", [True, False])
def test_a_record_present_on_both_sides_without_base_agrees_on_equal_fields_and_resolves_the_rest(local_dirty):
    # a create pushed just before a crash, matched afterwards by its external id
    result = merge(base=None, local={**NEW, "StageName": "Negotiation", "ExpectedRevenue": None},
                   remote={**NEW, "Amount": Decimal("10.00")}, policy="local_wins", local_dirty=local_dirty)
    assert result.action == "update"
    assert result.merged == {**NEW, "Amount": None, "StageName": "Negotiation"}
    assert result.to_local == {"ExpectedRevenue": Decimal("5.00")}
    assert result.to_remote == {"Amount": None, "StageName": "Negotiation"}
    assert result.conflicts == (
        field_conflict("Amount", None, Decimal("10.00"), policy="local_wins", winner="local", value=None, base=None),
        field_conflict("StageName", "Negotiation", "Prospecting", policy="local_wins", winner="local",
                       value="Negotiation", base=None),
        field_conflict("ExpectedRevenue", None, Decimal("5.00"), policy=READ_ONLY_POLICY, winner="salesforce",
                       value=Decimal("5.00"), reason=READ_ONLY_REASON, base=None),
    )


# -- deletes ----------------------------------------------------------------------------------------------

CHANGED = {**BASE, "StageName": "Negotiation", "CloseDate": None}


def record_conflict(*, local: Any, remote: Any, local_at: datetime = T_LOCAL, remote_at: datetime = T_REMOTE,
                    policy: str, winner: str, value: Any, parked: bool) -> Conflict:
    """The log entry of an edit-vs-delete conflict, with the reason the record policy gives."""
    what = "deleted in Salesforce, changed locally" if remote is None else "deleted locally, changed in Salesforce"
    resolution = policies.get_policy(policy).resolve(
        FieldConflict("Opportunity", KEY, None, BASE, local, remote, local_at, remote_at))
    return Conflict(field=None, base=BASE, local=local, remote=remote, local_changed_at=local_at,
                    remote_changed_at=remote_at, policy=policy, winner=winner, value=value, parked=parked,
                    reason=f"{what}: {resolution.reason}")


@pytest.mark.parametrize("local, local_dirty", [({}, True), ({"Amount": Decimal("3.00")}, False)])
def test_a_salesforce_delete_of_a_record_unchanged_locally_travels(local, local_dirty):
    result = merge(local=local, remote=None, remote_state="deleted", local_dirty=local_dirty, policy="local_wins")
    assert result == MergeResult("delete_local", merged={}, to_local={}, to_remote={}, conflicts=())


def test_a_local_delete_of_a_record_unchanged_in_salesforce_travels():
    result = merge(local=None, local_state="deleted", remote={}, policy="local_wins")
    assert result == MergeResult("delete_remote", merged={}, to_local={}, to_remote={}, conflicts=())


@pytest.mark.parametrize("state", ["absent", "deleted"])
def test_a_synced_record_gone_from_salesforce_counts_as_deleted(state):
    # with a base the record existed; a reconcile that no longer finds it reports it absent
    assert merge(local={}, remote=None, remote_state=state).action == "delete_local"
    assert merge(local=None, local_state=state, remote={}).action == "delete_remote"


@pytest.mark.parametrize("policy, local_at, action, winner, parked", [
    ("salesforce_wins", T_LOCAL, "delete_local", "salesforce", False),
    ("local_wins", T_LOCAL, "restore_remote", "local", False),
    ("latest_wins", T_LOCAL, "delete_local", "salesforce", False),
    ("latest_wins", T_REMOTE, "delete_local", "salesforce", False),  # a tie goes to Salesforce
    ("latest_wins", T_REMOTE + timedelta(seconds=1), "restore_remote", "local", False),
    ("manual", T_LOCAL, "delete_local", "salesforce", True),
])
def test_a_local_edit_against_a_salesforce_delete_is_decided_by_the_record_policy(policy, local_at, action,
                                                                                   winner, parked):
    result = merge(local=CHANGED, remote=None, remote_state="deleted", policy=policy, local_changed_at=local_at,
                   policy_for=lambda field: pytest.fail("a record-level conflict is not a field's"))
    restored = action == "restore_remote"
    assert result.action == action
    assert result.merged == (CHANGED if restored else {})
    assert result.to_local == {}
    # a re-create sends every writable value, nulls included, since Salesforce has nothing left to keep
    assert result.to_remote == ({f: CHANGED[f] for f in WRITABLE} if restored else {})
    assert result.conflicts == (record_conflict(local=CHANGED, remote=None, local_at=local_at, policy=policy,
                                                winner=winner, value=CHANGED if restored else None, parked=parked),)


@pytest.mark.parametrize("policy, remote_at, action, winner, parked", [
    ("salesforce_wins", T_REMOTE, "restore_local", "salesforce", False),
    ("local_wins", T_REMOTE, "delete_remote", "local", False),
    ("latest_wins", T_REMOTE, "restore_local", "salesforce", False),
    ("latest_wins", T_LOCAL, "restore_local", "salesforce", False),  # a tie goes to Salesforce
    ("latest_wins", T_LOCAL - timedelta(seconds=1), "delete_remote", "local", False),
    ("manual", T_REMOTE, "restore_local", "salesforce", True),
])
def test_a_salesforce_edit_against_a_local_delete_is_decided_by_the_record_policy(policy, remote_at, action,
                                                                                  winner, parked):
    result = merge(local=None, local_state="deleted", remote=CHANGED, policy=policy, remote_changed_at=remote_at)
    restored = action == "restore_local"
    assert result.action == action
    assert result.merged == (CHANGED if restored else {})
    assert result.to_local == (CHANGED if restored else {})
    assert result.to_remote == {}
    assert result.conflicts == (record_conflict(local=None, remote=CHANGED, remote_at=remote_at, policy=policy,
                                                winner=winner, value=CHANGED if restored else None, parked=parked),)


def test_manual_edit_vs_delete_keeps_the_local_edit_in_the_log():
    result = merge(local=CHANGED, remote=None, remote_state="deleted", policy="manual")
    (entry,) = result.conflicts
    assert (result.action, entry.parked, entry.local, entry.remote, entry.field) == \
        ("delete_local", True, CHANGED, None, None)


def test_a_record_never_synced_and_deleted_on_the_other_side_is_an_edit_vs_delete():
    # nothing says the surviving side's values were ever seen by the deleting side
    result = merge(base=None, local=NEW, remote=None, remote_state="deleted", policy="local_wins")
    assert (result.action, result.conflicts[0].base) == ("restore_remote", None)


@pytest.mark.parametrize("local_state, remote_state", [
    ("deleted", "deleted"), ("deleted", "absent"), ("absent", "deleted"), ("absent", "absent"),
])
def test_a_record_gone_or_never_there_on_both_sides_is_a_noop(local_state, remote_state):
    for base in (BASE, None):
        result = merge(base=base, local=None, remote=None, local_state=local_state, remote_state=remote_state)
        assert result == MergeResult("noop", merged={}, to_local={}, to_remote={}, conflicts=())


# -- bad calls ------------------------------------------------------------------------------------------------

def test_a_present_side_must_have_every_mapped_field():
    with pytest.raises(ValueError, match=f"Opportunity {KEY}: the remote values lack the mapped fields "
                                         "StageName, ExpectedRevenue"):
        merge(local=BASE, remote={"Name": "x", "Amount": 1, "CloseDate": None}, base={})
    with pytest.raises(ValueError, match="the local record is present but no local values were given"):
        merge(local=None, local_state="present", remote={})


def test_change_times_must_be_aware():
    with pytest.raises(ValueError, match="remote_changed_at must be a timezone-aware datetime"):
        merge(local={}, remote={}, remote_changed_at=datetime(2024, 5, 1))


def test_states_and_fields_are_checked():
    with pytest.raises(ValueError, match="'gone' is not a record state; choose one of: present, deleted, absent"):
        merge(local={}, remote={}, remote_state="gone")
    with pytest.raises(ValueError, match="fields lists Amount more than once"):
        merge(local={}, remote={}, fields=("Amount", "Name", "Amount"))


# -- properties -------------------------------------------------------------------------------------------

P_FIELDS = ("a", "b", "c", "d")
# few values, so that sides often agree; numbers and dates in several spellings of one value
VALUES = st.sampled_from([None, "", "x", "y", 0, 1, Decimal("1.5"), Decimal("1.50"), 1.5, True, False,
                          date(2024, 1, 1), MOMENT, MOMENT.astimezone(timezone(timedelta(hours=-5)))])
P_POLICIES = (*BUILTIN_POLICIES, RestoreBase.name)
# strategies built once: building them inside the draw costs more than the merge itself
KEEP = object()
SIDE_VALUES = st.just(KEEP) | VALUES  # a side keeps the base value about half the time: one-sided changes abound
BASES = st.dictionaries(st.sampled_from(P_FIELDS), VALUES)
TIMES = st.sampled_from([None, T_LOCAL, T_REMOTE])
POLICY_CHOICES = st.sampled_from(P_POLICIES)
WRITABLE_SETS = st.frozensets(st.sampled_from(P_FIELDS))


@st.composite
def scenarios(draw: st.DrawFn, *, never_synced_one_in: int = 4) -> dict[str, Any]:
    """merge_record arguments for a record present on both sides, over a few fields with random policies;
    one in `never_synced_one_in` has no base (0: never)."""
    never_synced = never_synced_one_in > 0 and draw(st.integers(1, never_synced_one_in)) == 1
    base = None if never_synced else draw(BASES)

    known = base or {}

    def side() -> dict[str, Any]:
        values = {f: draw(SIDE_VALUES if f in known else VALUES) for f in P_FIELDS}
        return {f: known[f] if v is KEEP else v for f, v in values.items()}

    per_field = {f: draw(POLICY_CHOICES) for f in P_FIELDS}
    return dict(object_name="Thing__c", record_key="a01000000000001AAA", fields=P_FIELDS, base=base,
                local=side(), remote=side(), local_state="present", remote_state="present",
                policy_for=per_field.__getitem__, record_policy=draw(POLICY_CHOICES),
                local_changed_at=draw(TIMES), remote_changed_at=draw(TIMES),
                remote_writable=draw(WRITABLE_SETS), local_dirty=draw(st.booleans()))


@pytest.fixture(scope="module")
def restore_base_policy():
    with registered(RestoreBase()):
        yield


def changed(value: Any, base: dict[str, Any] | None, field: str) -> bool:
    return base is None or field not in base or not values_equal(value, base[field])


def local_changed(value: Any, base: dict[str, Any] | None, field: str) -> bool:
    """As `changed`, except that an empty local column of a field the base predates is no edit."""
    return changed(value, base, field) and not (base is not None and field not in base and value is None)


def assert_converges(case: dict[str, Any]) -> None:
    """(1) After the writes both sides hold `merged` on writable fields and agree on one-way ones, and one
    more cycle has nothing left to do."""
    result = merge_record(**case)
    local, remote = {**case["local"], **result.to_local}, {**case["remote"], **result.to_remote}
    assert set(result.to_remote) <= case["remote_writable"]
    for field in P_FIELDS:
        if field in case["remote_writable"]:
            assert values_equal(local[field], result.merged[field]), field
            assert values_equal(remote[field], result.merged[field]), field
        else:
            assert values_equal(local[field], remote[field]), field
    again = merge_record(**{**case, "base": result.merged, "local": local, "remote": remote})
    assert (again.action, again.to_local, again.to_remote, again.conflicts) == ("noop", {}, {}, ())


def assert_no_silent_loss(case: dict[str, Any]) -> None:
    """(2) A field both sides changed differently is logged with both values and times, and any change
    that does not survive the merge is in the log."""
    result = merge_record(**case)
    logged = {c.field: c for c in result.conflicts}
    for field in P_FIELDS:
        local, remote = case["local"][field], case["remote"][field]
        was_local, remote_changed = local_changed(local, case["base"], field), changed(remote, case["base"], field)
        if field in logged:  # the log tells what both sides end with
            assert values_equal(logged[field].value, result.merged[field]), field
        if was_local and remote_changed and not values_equal(local, remote):
            entry = logged[field]
            assert (entry.local, entry.remote) == (local, remote)
            assert (entry.local_changed_at, entry.remote_changed_at) == \
                (case["local_changed_at"], case["remote_changed_at"])
        for mine, did_change in ((local, was_local), (remote, remote_changed)):
            if did_change and not values_equal(result.merged[field], mine):
                assert field in logged and mine in (logged[field].local, logged[field].remote), field


def assert_one_sided_changes_taken(case: dict[str, Any]) -> None:
    """(3) A field changed on one side only is taken as is, without a conflict, whatever the other fields
    do (a local change only where Salesforce takes it)."""
    result = merge_record(**case)
    logged = {c.field for c in result.conflicts}
    for field in P_FIELDS:
        local, remote = case["local"][field], case["remote"][field]
        was_local, remote_changed = local_changed(local, case["base"], field), changed(remote, case["base"], field)
        if remote_changed and not was_local:
            assert field not in logged and values_equal(result.merged[field], remote), field
        if was_local and not remote_changed and field in case["remote_writable"]:
            assert field not in logged and values_equal(result.merged[field], local), field


def assert_only_one_side_changed_gives_no_conflict(case: dict[str, Any], side: str) -> None:
    """(3) When only one side changed anything, there is no conflict and merged is that side's record."""
    base, other = case["base"], "remote" if side == "local" else "local"
    # the other side stays at base wherever there is one (a field missing from base is unknown, not unchanged)
    case = {**case, other: {f: base[f] if f in base else case[side][f] for f in P_FIELDS}}
    if side == "local":
        case["remote_writable"] = frozenset(P_FIELDS)
    result = merge_record(**case)
    assert result.conflicts == ()
    assert all(values_equal(result.merged[f], case[side][f]) for f in P_FIELDS)


# generating a case costs far more than merging it, so each generated case is checked for every property
@settings(max_examples=150, deadline=None)
@given(scenarios())
def test_properties_of_the_field_merge(restore_base_policy, case):
    assert_converges(case)
    dirty = {**case, "local_dirty": True}  # a not-dirty local row has no edits to lose
    assert_no_silent_loss(dirty)
    assert_one_sided_changes_taken(dirty)
    if case["base"] is not None:
        assert_only_one_side_changed_gives_no_conflict(dirty, "local")
        assert_only_one_side_changed_gives_no_conflict(dirty, "remote")


# both present is the field merge's business, checked above
STATE_PAIRS = st.sampled_from([(a, b) for a in RECORD_STATES for b in RECORD_STATES if a != "present" or b != a])


@settings(max_examples=100, deadline=None)
@given(scenarios(never_synced_one_in=2), STATE_PAIRS)  # creates need no base
def test_properties_of_creates_and_deletes(restore_base_policy, case, states):
    local_state, remote_state = states
    case = {**case, "local_state": local_state, "remote_state": remote_state}
    result = merge_record(**case)
    local = case["local"] if local_state == "present" else None
    remote = case["remote"] if remote_state == "present" else None
    if result.action in ("delete_local", "delete_remote"):
        local = remote = None
    elif result.action in ("create_local", "restore_local"):
        local = dict(result.to_local)
    elif result.action in ("create_remote", "restore_remote"):
        remote = {**dict.fromkeys(P_FIELDS), **result.to_remote}  # a fresh record holds what was sent
    elif local is not None and remote is not None:
        local, remote = {**local, **result.to_local}, {**remote, **result.to_remote}
    assert set(result.to_remote) <= case["remote_writable"]
    assert (local is None) == (remote is None)
    if local is None:
        assert result.merged == {}
    else:
        assert all(values_equal(local[f], result.merged[f]) for f in P_FIELDS)
        assert all(values_equal(remote[f], result.merged[f]) for f in case["remote_writable"])

    # edit vs delete: an edit lost to a delete, or a delete undone by an edit, is logged with the edited values
    # with a base the record existed, so a side it is absent from has deleted it
    gone = ("deleted", "absent") if case["base"] is not None else ("deleted",)
    if (local_state == "present" and remote_state in gone) or (remote_state == "present" and local_state in gone):
        present_side = "local" if local_state == "present" else "remote"
        values = case[present_side]
        # a field the base predates shows no edit (its value was never agreed on)
        edited = any(changed(values[f], case["base"], f) for f in P_FIELDS
                     if case["base"] is None or f in case["base"]) and \
            (present_side == "remote" or case["local_dirty"] or case["base"] is None)
        if edited:
            (entry,) = result.conflicts
            assert entry.field is None and getattr(entry, present_side) == values
            assert getattr(entry, "remote" if present_side == "local" else "local") is None
        else:
            assert result.conflicts == ()
            assert result.action == ("delete_local" if present_side == "local" else "delete_remote")


def test_a_field_mapped_after_the_base_is_filled_from_salesforce_even_on_an_edited_row():
    """Tried: a row edited in the portal (Name) when a newly mapped field (ExpectedRevenue) is read for
    the first time: its column is still empty locally, the base has no value for it. The empty column
    is no portal edit: Salesforce's value fills it, nothing is sent back, no conflict."""
    base = {k: v for k, v in BASE.items() if k != "ExpectedRevenue"}
    result = merge_record(
        object_name="Opportunity", record_key=KEY, fields=FIELDS, base=base,
        local={**base, "Name": "Acme renewal (portal)", "ExpectedRevenue": None},
        remote={**BASE, "ExpectedRevenue": Decimal("250.00")}, local_state="present", remote_state="present",
        policy_for=lambda field: "latest_wins", record_policy="latest_wins",
        local_changed_at=T_REMOTE + timedelta(hours=1), remote_changed_at=T_REMOTE, remote_writable=FIELDS)
    assert result.to_local == {"ExpectedRevenue": Decimal("250.00")}
    assert result.to_remote == {"Name": "Acme renewal (portal)"} and result.conflicts == ()


def test_a_portal_delete_is_not_undone_by_a_field_mapped_after_the_base():
    """Tried: the portal deletes a record while Salesforce holds a value in a field mapped since the
    base was recorded, and nothing else changed there. That value is no edit: the delete goes through."""
    base = {k: v for k, v in BASE.items() if k != "ExpectedRevenue"}
    result = merge_record(
        object_name="Opportunity", record_key=KEY, fields=FIELDS, base=base, local=None,
        remote={**BASE, "ExpectedRevenue": Decimal("250.00")}, local_state="deleted", remote_state="present",
        policy_for=lambda field: "salesforce_wins", record_policy="salesforce_wins",
        local_changed_at=T_REMOTE, remote_changed_at=T_LOCAL, remote_writable=FIELDS)
    assert (result.action, result.conflicts) == ("delete_remote", ())
