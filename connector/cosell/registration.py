"""Deal registration: the status state machine (who may move a registration where), expiry, and the edit lock
that holds a partner's changes to the registered terms while the vendor reviews them.
Pure: callers pass today's date and the moment of a move; nothing here reads the clock or does I/O."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from types import MappingProxyType
from typing import Any, Literal, get_args

__all__ = [
    "ACTIONS",
    "ACTORS",
    "Action",
    "Actor",
    "DECIDED_AT_FIELD",
    "EXPIRY_DATE_FIELD",
    "EditLock",
    "FINAL_STATUSES",
    "IN_REVIEW_STATUSES",
    "IllegalTransition",
    "LIVE_STATUSES",
    "LOCKED_FIELDS",
    "REGISTRATION_OBJECT",
    "REJECTION_REASON_FIELD",
    "REJECTION_REASON_LENGTH",
    "Registration",
    "RegistrationStatus",
    "STATUSES",
    "STATUS_FIELD",
    "SUBMITTED_AT_FIELD",
    "TRANSITIONS",
    "Transition",
    "TransitionResult",
    "allowed_targets",
    "expire_due",
    "reachable_targets",
    "transition",
]


class RegistrationStatus(StrEnum):
    """Deal_Registration__c.Status__c; the values are the org's picklist values."""

    DRAFT = "Draft"
    SUBMITTED = "Submitted"
    UNDER_REVIEW = "Under Review"
    APPROVED = "Approved"
    REJECTED = "Rejected"
    EXPIRED = "Expired"
    WITHDRAWN = "Withdrawn"


STATUSES: tuple[str, ...] = tuple(member.value for member in RegistrationStatus)

# Who moves a registration: the partner works in the portal (the local side), the vendor's channel team in
# Salesforce (the remote side), and the clock expires approved registrations whichever side runs it.
Actor = Literal["partner", "vendor", "clock"]
ACTORS: tuple[str, ...] = get_args(Actor)

Action = Literal["submit", "withdraw", "resubmit", "start_review", "approve", "reject", "expire"]
ACTIONS: tuple[str, ...] = get_args(Action)

_S = RegistrationStatus
IN_REVIEW_STATUSES: frozenset[RegistrationStatus] = frozenset({_S.SUBMITTED, _S.UNDER_REVIEW})
"""While a registration is in one of these, partner-side edits to its locked fields wait (EditLock)."""
LIVE_STATUSES: frozenset[RegistrationStatus] = frozenset({_S.SUBMITTED, _S.UNDER_REVIEW, _S.APPROVED})
"""A registration in one of these is a claim that other partners and direct sales must respect."""
FINAL_STATUSES: frozenset[RegistrationStatus] = frozenset({_S.EXPIRED, _S.WITHDRAWN})
"""No one moves a registration out of these; the partner registers the deal again instead."""

REGISTRATION_OBJECT = "Deal_Registration__c"
STATUS_FIELD = "Status__c"
SUBMITTED_AT_FIELD = "Submitted_At__c"
DECIDED_AT_FIELD = "Decided_At__c"
EXPIRY_DATE_FIELD = "Expiry_Date__c"
REJECTION_REASON_FIELD = "Rejection_Reason__c"
REJECTION_REASON_LENGTH = 255  # the org's field length: a longer reason would be refused by Salesforce


@dataclass(frozen=True)
class Transition:
    source: RegistrationStatus
    target: RegistrationStatus
    actor: Actor
    action: Action


TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.DRAFT, _S.SUBMITTED, "partner", "submit"),
    Transition(_S.DRAFT, _S.WITHDRAWN, "partner", "withdraw"),
    Transition(_S.SUBMITTED, _S.WITHDRAWN, "partner", "withdraw"),
    Transition(_S.REJECTED, _S.SUBMITTED, "partner", "resubmit"),
    Transition(_S.SUBMITTED, _S.UNDER_REVIEW, "vendor", "start_review"),
    Transition(_S.UNDER_REVIEW, _S.APPROVED, "vendor", "approve"),
    Transition(_S.UNDER_REVIEW, _S.REJECTED, "vendor", "reject"),
    # A vendor may decide straight from Submitted, as Google's channel review does: Under Review only tells
    # the partner someone picked the registration up. Refusing it would make the connector fight channel
    # managers who approve in one click in Salesforce, the vendor's system of record.
    Transition(_S.SUBMITTED, _S.APPROVED, "vendor", "approve"),
    Transition(_S.SUBMITTED, _S.REJECTED, "vendor", "reject"),
    Transition(_S.APPROVED, _S.EXPIRED, "clock", "expire"),
)
"""Every legal move. Not in it, on purpose: a partner withdrawing once the review has started (as in AWS,
a registration in review is frozen for the partner; the vendor rejects it instead), and any move out of
Expired or Withdrawn."""

_MOVES: dict[tuple[RegistrationStatus, RegistrationStatus], tuple[Transition, ...]] = {}
for _t in TRANSITIONS:
    _MOVES[(_t.source, _t.target)] = (*_MOVES.get((_t.source, _t.target), ()), _t)
del _t

_WHO: dict[str, str] = {"partner": "a partner", "vendor": "the vendor", "clock": "the clock"}
_ONLY: dict[str, str] = {
    "submit": "only the partner submits a registration",
    "withdraw": "only the partner withdraws a registration",
    "resubmit": "only the partner resubmits a registration",
    "start_review": "only the vendor starts a review",
    "approve": "only the vendor decides",
    "reject": "only the vendor decides",
    "expire": "a registration expires only by the clock, at its expiry date",
}
_HINTS: dict[tuple[RegistrationStatus, RegistrationStatus], str] = {
    (_S.UNDER_REVIEW, _S.WITHDRAWN): "once the vendor has started the review the partner can no longer "
                                     "withdraw it; the vendor can reject it instead",
}


class IllegalTransition(ValueError):
    """A move the state machine does not allow (or not with what was given); the message says why in words a
    channel manager understands. A record-level problem: the sync parks the record, the others go on."""

    def __init__(self, reason: str, *, current: str | None = None, target: str | None = None,
                 actor: str | None = None) -> None:
        super().__init__(reason)
        self.reason, self.current, self.target, self.actor = reason, current, target, actor


@dataclass(frozen=True)
class TransitionResult:
    """A legal move and what it writes on the Deal_Registration__c record.

    Timestamps: Submitted_At__c is set on submit and on resubmit (the latest submission; resubmitting also
    clears the old decision: Decided_At__c and Rejection_Reason__c); Decided_At__c is set on approve and on
    reject; Expiry_Date__c is set on approve, which needs it. `stamp` names the timestamp field the move sets;
    it is in `changes` only when the caller gave the moment (`at`), since nothing here reads the clock."""

    previous: RegistrationStatus
    status: RegistrationStatus
    actor: Actor
    action: Action
    changes: Mapping[str, Any]
    stamp: str | None = None

    @property
    def ends_review(self) -> bool:
        """True when held partner edits may now be released (see EditLock.release)."""
        return self.previous in IN_REVIEW_STATUSES and self.status not in IN_REVIEW_STATUSES


def transition(current: str, target: str, actor: str, *, reason: str | None = None,
               today: dt.date | None = None, expiry_date: dt.date | None = None,
               at: dt.datetime | None = None) -> TransitionResult:
    """Move a registration from `current` to `target` as `actor`, or raise IllegalTransition saying why.

    - reject needs a `reason` (non-blank, at most 255 characters: Rejection_Reason__c);
    - approve needs the `expiry_date` the protection runs to; given `today`, it must lie after today;
    - expire (the clock) needs `expiry_date` and `today` (or `at`), and happens at or after the expiry date.
    `today` is the date in whatever time zone the caller runs its business day in (by default the date of
    `at`); `at` is the aware moment of the move, written to the timestamp field the move sets."""
    source, goal, who = _status(current), _status(target), _actor(actor)
    if at is not None and (not isinstance(at, dt.datetime) or at.utcoffset() is None):
        raise ValueError(f"at must be a timezone-aware datetime (UTC), got {at!r}")
    if today is None and at is not None:
        today = at.date()  # in the offset the caller gave: its business day, not necessarily UTC's
    move = next((t for t in _MOVES.get((source, goal), ()) if t.actor == who), None)
    if move is None:
        raise IllegalTransition(f"{_WHO[who]} cannot move a registration from {source} to {goal}: "
                                f"{_why_not(source, goal)}", current=source, target=goal, actor=who)

    def refuse(why: str) -> IllegalTransition:
        return IllegalTransition(f"{_WHO[who]} cannot move a registration from {source} to {goal}: {why}",
                                 current=source, target=goal, actor=who)

    changes: dict[str, Any] = {STATUS_FIELD: goal.value}
    stamp: str | None = None
    if move.action in ("submit", "resubmit"):
        stamp = SUBMITTED_AT_FIELD
        if move.action == "resubmit":
            changes[DECIDED_AT_FIELD] = None
            changes[REJECTION_REASON_FIELD] = None
    elif move.action == "reject":
        text = reason.strip() if isinstance(reason, str) else ""
        if not text:
            raise refuse("a rejection needs a reason the partner can act on")
        if len(text) > REJECTION_REASON_LENGTH:
            raise refuse(f"the rejection reason has {len(text)} characters; {REJECTION_REASON_FIELD} holds "
                         f"{REJECTION_REASON_LENGTH}")
        changes[REJECTION_REASON_FIELD] = text
        stamp = DECIDED_AT_FIELD
    elif move.action == "approve":
        if expiry_date is None:
            raise refuse("an approval needs the expiry date the protection runs to")
        _require_date("expiry_date", expiry_date)
        if today is not None and expiry_date <= today:
            raise refuse(f"the expiry date {expiry_date.isoformat()} is not after today ({today.isoformat()})")
        changes[EXPIRY_DATE_FIELD] = expiry_date
        stamp = DECIDED_AT_FIELD
    elif move.action == "expire":
        if today is None:
            raise ValueError("the clock needs today's date (today= or at=) to expire a registration")
        if expiry_date is None:
            raise refuse("it has no expiry date, so the clock never expires it")
        _require_date("expiry_date", expiry_date)
        if today < expiry_date:
            raise refuse(f"it expires on {expiry_date.isoformat()}, not before (today is {today.isoformat()})")
    if stamp is not None and at is not None:
        changes[stamp] = at
    return TransitionResult(source, goal, who, move.action, MappingProxyType(changes), stamp)


def allowed_targets(current: str, actor: str) -> tuple[RegistrationStatus, ...]:
    """The statuses `actor` may move a `current` registration to, in picklist order. Preconditions (a reason,
    an expiry date, the date having come) are not checked here; transition() checks them."""
    source, who = _status(current), _actor(actor)
    targets = {t.target for t in TRANSITIONS if t.source == source and t.actor == who}
    return tuple(s for s in RegistrationStatus if s in targets)


def reachable_targets(current: str, actors: Iterable[str]) -> frozenset[RegistrationStatus]:
    """The statuses reachable from `current` in one or more moves made only by `actors`. Between two syncs
    one side may make several moves (a partner resubmits and then withdraws), and the sync sees only the
    last status."""
    source, who = _status(current), {_actor(a) for a in actors}
    seen: set[RegistrationStatus] = set()
    frontier = [source]
    while frontier:
        status = frontier.pop()
        for t in TRANSITIONS:
            if t.source == status and t.actor in who and t.target not in seen:
                seen.add(t.target)
                frontier.append(t.target)
    return frozenset(seen)


def _why_not(source: RegistrationStatus, target: RegistrationStatus) -> str:
    if source == target:
        return f"it is already {source}"
    others = _MOVES.get((source, target))
    if others:
        return _ONLY[others[0].action]
    if (source, target) in _HINTS:
        return _HINTS[(source, target)]
    if source in FINAL_STATUSES:
        return f"{source} is final; the partner registers the deal again instead"
    by_actor: dict[str, list[str]] = {}
    for t in TRANSITIONS:
        if t.source == source:
            by_actor.setdefault(t.actor, []).append(t.target.value)
    options = [f"{_or(targets)} (by the {actor})" for actor, targets in by_actor.items()]
    return f"from {source} a registration can only go to {' or '.join(options)}"


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def _status(value: object) -> RegistrationStatus:
    if isinstance(value, RegistrationStatus):
        return value
    if isinstance(value, str) and value in STATUSES:
        return RegistrationStatus(value)
    raise ValueError(f"{value!r} is not a registration status; choose one of: {', '.join(STATUSES)}")


def _actor(value: object) -> Actor:
    if isinstance(value, str) and value in ACTORS:
        return value  # type: ignore[return-value]
    raise ValueError(f"{value!r} is not an actor; choose one of: {', '.join(ACTORS)}")


def _require_date(name: str, value: object) -> None:
    # a datetime is a date too, but comparing one with a date raises, and it would carry a time zone
    # question the Expiry_Date__c date field does not have
    if not isinstance(value, dt.date) or isinstance(value, dt.datetime):
        raise ValueError(f"{name} must be a date, got {value!r}")


# -- registrations and expiry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Registration:
    """One Deal_Registration__c: the protected claim of a partner on an opportunity. `key` is the Salesforce Id,
    or the local UUID of a registration Salesforce has not seen yet."""

    key: str
    status: RegistrationStatus
    partner_account: str | None = None
    end_customer_account: str | None = None
    opportunity_key: str | None = None
    expiry_date: dt.date | None = None
    submitted_at: dt.datetime | None = None
    decided_at: dt.datetime | None = None
    rejection_reason: str | None = None
    registered_amount: Decimal | None = None
    program: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "status", _status(self.status))
        if self.expiry_date is not None:
            _require_date(f"registration {self.key}: expiry_date", self.expiry_date)

    @property
    def live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def in_review(self) -> bool:
        return self.status in IN_REVIEW_STATUSES

    @classmethod
    def from_record(cls, record: Mapping[str, Any], *, key_field: str = "Id") -> Registration:
        """A registration from a Deal_Registration__c value dict keyed by field API name."""
        expiry = record.get(EXPIRY_DATE_FIELD)
        if isinstance(expiry, str):
            expiry = dt.date.fromisoformat(expiry)
        return cls(key=record[key_field], status=record[STATUS_FIELD],
                   partner_account=record.get("Partner_Account__c"),
                   end_customer_account=record.get("End_Customer_Account__c"),
                   opportunity_key=record.get("Opportunity__c"), expiry_date=expiry,
                   submitted_at=record.get(SUBMITTED_AT_FIELD), decided_at=record.get(DECIDED_AT_FIELD),
                   rejection_reason=record.get(REJECTION_REASON_FIELD),
                   registered_amount=record.get("Registered_Amount__c"), program=record.get("Program__c"))


def expire_due(registrations: Iterable[Registration], today: dt.date) -> list[Registration]:
    """The approved registrations whose expiry date has come (today or earlier), in the order given: the
    clock's Approved -> Expired moves for the caller to make. An approved registration without an expiry
    date never expires by the clock (the org refuses to approve one without it)."""
    _require_date("today", today)
    return [r for r in registrations
            if r.status == _S.APPROVED and r.expiry_date is not None and r.expiry_date <= today]


# -- the edit lock ---------------------------------------------------------------------------------------------

LOCKED_FIELDS: Mapping[str, frozenset[str]] = MappingProxyType({
    # the terms the vendor reviews: whose claim, on which customer and deal, for how much, under which program
    REGISTRATION_OBJECT: frozenset({"Opportunity__c", "Partner_Account__c", "End_Customer_Account__c",
                                    "Registered_Amount__c", "Program__c", "CurrencyIsoCode"}),
    # the registered opportunity's deal terms; its end customer is the opportunity's AccountId
    "Opportunity": frozenset({"Amount", "CloseDate", "AccountId", "CurrencyIsoCode"}),
    # the registered opportunity's participants: their split and attribution are the compensation the vendor
    # reviews (who sourced the deal, who earns what share), so a partner's change to them waits too
    "Co_Sell_Participant__c": frozenset({"Attribution__c", "Split_Type__c", "Split_Percent__c"}),
})
"""Per object, the fields a partner may not change while a registration is in review. Other fields (notes,
next steps, contacts) flow as usual: locking less than AWS's all-fields freeze keeps the portal useful
while the review protects what it judges. Status__c is never held; it moves through transition()."""


@dataclass(frozen=True)
class EditLock:
    """Holds partner-side (local) edits to the locked fields of one object while a registration is Submitted or
    Under Review, and hands them back when the review ends, as Tackle queues edits while AWS locks a record.

    Pure: the held changes are passed in and returned, so the caller stores them with its sync state and
    nothing is lost across restarts. A held field edited again keeps only its latest value (what the
    partner last wanted). Released edits go through the normal merge, which still weighs them against any
    vendor change made meanwhile."""

    object_name: str = REGISTRATION_OBJECT
    fields: frozenset[str] = field(default=frozenset())

    def __post_init__(self) -> None:
        if not self.fields:
            if self.object_name not in LOCKED_FIELDS:
                raise ValueError(f"no locked fields are known for {self.object_name!r}; pass fields= or use one "
                                 f"of: {', '.join(LOCKED_FIELDS)}")
            object.__setattr__(self, "fields", LOCKED_FIELDS[self.object_name])
        else:
            object.__setattr__(self, "fields", frozenset(self.fields))

    @staticmethod
    def locks(status: str | None) -> bool:
        """Whether a registration in `status` locks its fields (None: no registration, nothing locked)."""
        return status is not None and _status(status) in IN_REVIEW_STATUSES

    def hold(self, status: str | None, changes: Mapping[str, Any],
             held: Mapping[str, Any] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        """Split a partner's `changes` into (apply_now, held). While locked, changes to locked fields join
        `held` (the ones held before) and the rest apply now. When not locked, everything applies now: the
        earlier held changes first, overridden by the new ones, and nothing stays held."""
        previous = dict(held or {})
        if not self.locks(status):
            return {**previous, **changes}, {}
        apply_now = {f: v for f, v in changes.items() if f not in self.fields}
        for f, v in changes.items():
            if f in self.fields:
                previous.pop(f, None)  # re-inserted last: the order shows the order of the partner's edits
                previous[f] = v
        return apply_now, previous

    def release(self, status: str | None, held: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(apply_now, still_held): all held changes once the review has ended (Approved, Rejected, Withdrawn or
        any status that does not lock), nothing while it goes on. Safe to call on every sync cycle."""
        if self.locks(status):
            return {}, dict(held)
        return dict(held), {}
