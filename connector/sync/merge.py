"""The three-way merge of one record: base (what both sides last agreed on), local row and Salesforce record in,
the values both sides must end with, the writes that get them there and the conflict log out.
Pure and deterministic (no I/O, no clock): a value that loses is never dropped without a conflict entry."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal, get_args

from connector.sync.policies import FieldConflict, Resolution, Winner, get_policy, require_aware

__all__ = [
    "ACTIONS",
    "READ_ONLY_POLICY",
    "READ_ONLY_REASON",
    "RECORD_STATES",
    "Action",
    "Conflict",
    "MergeResult",
    "RecordState",
    "merge_record",
    "values_equal",
]

RecordState = Literal["present", "deleted", "absent"]
RECORD_STATES: tuple[str, ...] = get_args(RecordState)

Action = Literal["noop", "create_local", "create_remote", "update", "delete_local", "delete_remote",
                 "restore_local", "restore_remote"]
ACTIONS: tuple[str, ...] = get_args(Action)

# A local edit of a field the connector may not write in Salesforce cannot win under any policy; it is
# logged under the policy that in effect decided it, the one mapping files force on read_only objects.
READ_ONLY_POLICY = "salesforce_wins"
READ_ONLY_REASON = "field is read-only in Salesforce"


@dataclass(frozen=True)
class Conflict:
    """One entry of the conflict log: both values, both change times, who won and why.

    `field` is None for a record-level conflict (edited on one side, deleted on the other); `base`, `local`
    and `remote` are then the records' value dicts (None for the side that deleted it, and for `base` when
    the record was never synced) and `value` is the record's values after the merge (None when deleted)."""

    field: str | None
    base: Any
    local: Any
    remote: Any
    local_changed_at: dt.datetime | None
    remote_changed_at: dt.datetime | None
    policy: str
    winner: Winner
    value: Any
    parked: bool
    reason: str


@dataclass(frozen=True)
class MergeResult:
    """What to do with one record. Applying `to_local` to the local row and `to_remote` to the Salesforce
    record makes both agree on `merged`, which becomes the new base (except on fields Salesforce will not
    take from the connector, where the local row simply follows Salesforce)."""

    action: Action
    merged: dict[str, Any]  # every merged field's agreed value; empty when the record is deleted
    to_local: dict[str, Any]  # local fields that must change to reach `merged`
    to_remote: dict[str, Any]  # Salesforce fields to write: only writable ones, only changed ones
    conflicts: tuple[Conflict, ...] = ()


class _Unknown:
    """The base value of a field both sides never agreed on (a record never synced, a newly mapped field):
    equal to nothing, so each side's value counts as a change and a disagreement as a conflict."""

    def __repr__(self) -> str:
        return "<no base>"


_UNKNOWN: Any = _Unknown()


def values_equal(a: Any, b: Any) -> bool:
    """Whether two field values are the same value, as the merge sees it.

    None equals only None; numbers (int, float, Decimal; not bool) compare by value, so Decimal("1.50")
    equals Decimal("1.5") and the float 0.1 equals Decimal("0.1") (a float is read as its shortest repr,
    which is how Salesforce's JSON wrote it); booleans equal only booleans; a date never equals a datetime;
    datetimes compare as instants (an aware and a naive one are unequal); strings and anything else by ==."""
    if a is None or b is None:
        return a is None and b is None
    if _is_number(a) or _is_number(b):
        if not (_is_number(a) and _is_number(b)):
            return False
        x, y = _decimal(a), _decimal(b)
        if x.is_nan() or y.is_nan():  # NaN == NaN is False, and a value must equal itself to converge
            return x.is_nan() and y.is_nan()
        return x == y
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
        # datetime is a date subclass; an aware/naive pair compares unequal instead of raising
        return isinstance(a, dt.datetime) and isinstance(b, dt.datetime) and a == b
    return bool(a == b)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def _decimal(value: int | float | Decimal) -> Decimal:
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _same_as_base(value: Any, base: Any) -> bool:
    return base is not _UNKNOWN and values_equal(value, base)


def merge_record(*, object_name: str, record_key: str, fields: Sequence[str],
                 base: Mapping[str, Any] | None, local: Mapping[str, Any] | None, remote: Mapping[str, Any] | None,
                 local_state: RecordState, remote_state: RecordState,
                 policy_for: Callable[[str], str],
                 record_policy: str,
                 local_changed_at: dt.datetime | None = None, remote_changed_at: dt.datetime | None = None,
                 remote_writable: Collection[str] = (),
                 local_dirty: bool = True,
                 ) -> MergeResult:
    """Merge one record of `object_name` (key: its Salesforce Id or local UUID) over the mapped `fields`.

    `base` holds the values both sides last agreed on (None for a record never synced; a field missing from
    it counts as never agreed on). `local` and `remote` hold each side's current values and must have every
    field when that side is "present"; extra keys are ignored. Values compare with `values_equal`.
    A state is "deleted" when the record was deleted on that side, "absent" when it never existed there;
    with a base the record did exist, so "absent" is read as "deleted" (a reconcile found it gone).
    Change times must be timezone-aware; they feed `latest_wins` and the log, nothing reads the clock.

    Both present, per field (b base, l local, r remote): local changed iff `local_dirty` and l != b (with
    no base every value counts as changed and `local_dirty` is ignored, as "unchanged since the last sync"
    means nothing then); remote changed iff r != b.
      - neither or only remote changed: take r.
      - only local changed: take l if the field is in `remote_writable`; otherwise Salesforce's r overwrites
        it, logged as a conflict (policy salesforce_wins, reason "field is read-only in Salesforce").
      - both changed to equal values: nothing to do, no conflict (merged keeps r's spelling).
      - both changed differently: on a writable field `get_policy(policy_for(field))` resolves it; on a
        one-way field Salesforce wins as above. Either way the conflict is logged, parked ones included,
        and the resolved value is written to whichever side differs from it (both, when a policy returns
        a value that is neither side's).
    `to_local`/`to_remote` are exactly the fields whose value differs from `merged` (`to_remote` only
    writable ones), so a not-dirty local row that drifted from base is put back to the agreed value.
    The action is "update" when anything is to be written, else "noop" (`merged` is still the new base).

    New records (no base): present locally only -> "create_remote" with to_remote = the writable fields
    whose local value is not None, merged = the local values; present in Salesforce only ->
    "create_local" with to_local = merged = the remote values.

    Deletes: deleted on one side, present on the other. If the present side is unchanged since base (for
    the local side: or not dirty; with no base it counts as changed, since the deleting side never saw its
    values) the delete travels: "delete_local" / "delete_remote". If it changed
    (edit vs delete), `record_policy` decides through the same policy registry with a record-level
    FieldConflict (field None): a Salesforce win follows Salesforce ("delete_local", or "restore_local"
    with to_local = the remote values), a local win follows the local side ("delete_remote", or
    "restore_remote" with to_remote = every writable local value). So salesforce_wins and manual take
    Salesforce's side, local_wins the local side, latest_wins the later change time (ties to Salesforce);
    `manual` marks the entry parked, and the edited values it overrode stay in the log for the admin.
    Record-level entries have field None and the full value dicts (None for the deleted side).
    Deleted or absent on both sides: "noop". Merged is empty after a delete.

    Same inputs, same result: fields, writes and conflicts come out in the order of `fields`."""
    fields = tuple(fields)
    _check_arguments(fields, local_state, remote_state, local_changed_at, remote_changed_at)
    if base is not None:
        local_state = "deleted" if local_state == "absent" else local_state
        remote_state = "deleted" if remote_state == "absent" else remote_state
    ctx = _Context(object_name, record_key, fields, base, local_changed_at, remote_changed_at,
                   frozenset(remote_writable), local_dirty or base is None)

    if local_state == "present" and remote_state == "present":
        return _merge_fields(ctx, _values(ctx, "local", local), _values(ctx, "remote", remote), policy_for)
    if local_state == "present":
        local_values = _values(ctx, "local", local)
        if remote_state == "absent":
            return MergeResult("create_remote", merged=local_values, to_local={},
                               to_remote={f: v for f, v in local_values.items() if f in ctx.writable and v is not None})
        if not (ctx.local_dirty and ctx.changed(local_values)):
            return MergeResult("delete_local", merged={}, to_local={}, to_remote={})
        return _edit_vs_delete(ctx, record_policy, local_values=local_values, remote_values=None)
    if remote_state == "present":
        remote_values = _values(ctx, "remote", remote)
        if local_state == "absent":
            return MergeResult("create_local", merged=remote_values, to_local=dict(remote_values), to_remote={})
        if not ctx.changed(remote_values):
            return MergeResult("delete_remote", merged={}, to_local={}, to_remote={})
        return _edit_vs_delete(ctx, record_policy, local_values=None, remote_values=remote_values)
    return MergeResult("noop", merged={}, to_local={}, to_remote={})


@dataclass(frozen=True)
class _Context:
    object_name: str
    record_key: str
    fields: tuple[str, ...]
    base: Mapping[str, Any] | None
    local_changed_at: dt.datetime | None
    remote_changed_at: dt.datetime | None
    writable: frozenset[str]
    local_dirty: bool

    def base_value(self, field: str) -> Any:
        return _UNKNOWN if self.base is None else self.base.get(field, _UNKNOWN)

    def changed(self, values: Mapping[str, Any]) -> bool:
        """Edited since the base. A field the base predates (mapped since) tells nothing either way: its
        value was never agreed on, so it cannot show an edit that should outweigh a delete."""
        return any(not _same_as_base(values[f], self.base_value(f)) for f in self.fields
                   if self.base is None or f in self.base)

    def base_dict(self) -> dict[str, Any] | None:
        return None if self.base is None else {f: self.base[f] for f in self.fields if f in self.base}


def _check_arguments(fields: tuple[str, ...], local_state: str, remote_state: str,
                     local_changed_at: dt.datetime | None, remote_changed_at: dt.datetime | None) -> None:
    for name, state in (("local_state", local_state), ("remote_state", remote_state)):
        if state not in RECORD_STATES:
            raise ValueError(f"{name} {state!r} is not a record state; choose one of: {', '.join(RECORD_STATES)}")
    if len(set(fields)) != len(fields):
        twice = sorted({f for f in fields if fields.count(f) > 1})
        raise ValueError(f"fields lists {', '.join(twice)} more than once")
    require_aware("local_changed_at", local_changed_at)
    require_aware("remote_changed_at", remote_changed_at)


def _values(ctx: _Context, side: str, values: Mapping[str, Any] | None) -> dict[str, Any]:
    # a missing field read as None would write None over real data on the other side: refuse instead
    if values is None:
        raise ValueError(f"{ctx.object_name} {ctx.record_key}: the {side} record is present but no {side} "
                         "values were given")
    missing = [f for f in ctx.fields if f not in values]
    if missing:
        raise ValueError(f"{ctx.object_name} {ctx.record_key}: the {side} values lack the mapped fields "
                         f"{', '.join(missing)}")
    return {f: values[f] for f in ctx.fields}


def _merge_fields(ctx: _Context, local: dict[str, Any], remote: dict[str, Any],
                  policy_for: Callable[[str], str]) -> MergeResult:
    merged: dict[str, Any] = {}
    conflicts: list[Conflict] = []
    for field in ctx.fields:
        b, l, r = ctx.base_value(field), local[field], remote[field]
        # A field the base predates (mapped since): its empty new column says nothing, Salesforce fills it.
        added_since = ctx.base is not None and b is _UNKNOWN and l is None
        local_changed = ctx.local_dirty and not _same_as_base(l, b) and not added_since
        remote_changed = not _same_as_base(r, b)
        if not local_changed or (remote_changed and values_equal(l, r)):
            merged[field] = r
        elif field not in ctx.writable:
            merged[field] = r
            conflicts.append(_field_conflict(ctx, field, b, l, r, READ_ONLY_POLICY,
                                             Resolution("salesforce", r, reason=READ_ONLY_REASON)))
        elif not remote_changed:
            merged[field] = l
        else:
            name = policy_for(field)
            resolution = _resolve(name, FieldConflict(ctx.object_name, ctx.record_key, field, _known(b), l, r,
                                                      ctx.local_changed_at, ctx.remote_changed_at))
            merged[field] = resolution.value
            conflicts.append(_field_conflict(ctx, field, b, l, r, name, resolution))
    to_local = {f: v for f, v in merged.items() if not values_equal(local[f], v)}
    to_remote = {f: v for f, v in merged.items() if f in ctx.writable and not values_equal(remote[f], v)}
    return MergeResult("update" if to_local or to_remote else "noop", merged=merged, to_local=to_local,
                       to_remote=to_remote, conflicts=tuple(conflicts))


def _known(base_value: Any) -> Any:
    # policies and the log see None for "never agreed on"; the sentinel is the merge's own business
    return None if base_value is _UNKNOWN else base_value


def _field_conflict(ctx: _Context, field: str, b: Any, l: Any, r: Any, policy: str,
                    resolution: Resolution) -> Conflict:
    return Conflict(field=field, base=_known(b), local=l, remote=r, local_changed_at=ctx.local_changed_at,
                    remote_changed_at=ctx.remote_changed_at, policy=policy, winner=resolution.winner,
                    value=resolution.value, parked=resolution.parked, reason=resolution.reason)


def _resolve(name: str, conflict: FieldConflict) -> Resolution:
    resolution = get_policy(name).resolve(conflict)
    if not isinstance(resolution, Resolution):
        raise TypeError(f"conflict policy {name!r} returned {resolution!r} instead of a Resolution")
    return resolution


def _edit_vs_delete(ctx: _Context, record_policy: str, *, local_values: dict[str, Any] | None,
                    remote_values: dict[str, Any] | None) -> MergeResult:
    resolution = _resolve(record_policy, FieldConflict(ctx.object_name, ctx.record_key, None, ctx.base_dict(),
                                                       local_values, remote_values,
                                                       ctx.local_changed_at, ctx.remote_changed_at))
    # only the winner and the parked flag count: the surviving record is the winning side's, whole
    if resolution.winner == "salesforce":
        if remote_values is None:
            result = MergeResult("delete_local", merged={}, to_local={}, to_remote={})
        else:
            result = MergeResult("restore_local", merged=dict(remote_values), to_local=dict(remote_values),
                                 to_remote={})
    elif local_values is None:
        result = MergeResult("delete_remote", merged={}, to_local={}, to_remote={})
    else:
        result = MergeResult("restore_remote", merged=dict(local_values), to_local={},
                             to_remote={f: v for f, v in local_values.items() if f in ctx.writable})
    what = ("deleted in Salesforce, changed locally" if remote_values is None
            else "deleted locally, changed in Salesforce")
    conflict = Conflict(field=None, base=ctx.base_dict(), local=local_values, remote=remote_values,
                        local_changed_at=ctx.local_changed_at, remote_changed_at=ctx.remote_changed_at,
                        policy=record_policy, winner=resolution.winner,
                        value=None if result.action.startswith("delete") else result.merged,
                        parked=resolution.parked, reason=f"{what}: {resolution.reason}" if resolution.reason else what)
    return MergeResult(result.action, merged=result.merged, to_local=result.to_local, to_remote=result.to_remote,
                       conflicts=(conflict,))
