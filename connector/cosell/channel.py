"""Channel conflicts between deal registrations: competing partner claims (on one opportunity, or on an end
customer another partner holds an approved registration at), claims on accounts direct sales owns, and a
second approval for the same opportunity and role. Flags only; a channel manager decides.
Pure: the caller supplies the registrations, the accounts direct sales owns (DirectOwnership says which, from
an account's own fields) and each partner's role."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Literal, get_args

from connector.cosell.registration import Registration, RegistrationStatus

__all__ = [
    "CHANNEL_CONFLICT_KINDS",
    "ChannelConflict",
    "ChannelConflictKind",
    "DEFAULT_DIRECT_ACCOUNT_TYPES",
    "DirectOwnership",
    "detect_channel_conflicts",
]

ChannelConflictKind = Literal[
    "competing_registrations",  # live registrations from different partners for one customer and opportunity
    "customer_claimed",         # a live registration at an end customer another partner holds an approval at
    "direct_owned_account",     # a live registration on an account direct sales already owns
    "duplicate_approval",       # more than one approved registration per opportunity and partner role
]
CHANNEL_CONFLICT_KINDS: tuple[str, ...] = get_args(ChannelConflictKind)


@dataclass(frozen=True)
class ChannelConflict:
    kind: ChannelConflictKind
    registration_keys: tuple[str, ...]
    reason: str

    @property
    def fingerprint(self) -> str:
        """The same conflict found again (by another check, after a restart) has the same fingerprint: its kind
        and its registrations, in any order."""
        return f"{self.kind}:{','.join(sorted(self.registration_keys))}"


DEFAULT_DIRECT_ACCOUNT_TYPES: frozenset[str] = frozenset({"Customer - Direct"})
"""Account.Type values that mean direct sales owns the account (the standard picklist's "Customer - Direct";
"Customer - Channel" is the customer the channel serves). Reveal builds the same status from account fields."""


@dataclass(frozen=True)
class DirectOwnership:
    """Which end-customer accounts direct sales owns, read from the account itself: its Type is one of `types`,
    or its owner is one of `owners` (the direct team's User Ids). A partner registering such an account is
    the PartnerStack case: the vendor's own sales already works it."""

    types: frozenset[str] = DEFAULT_DIRECT_ACCOUNT_TYPES
    owners: frozenset[str] = frozenset()

    def owns(self, account_type: str | None, owner: str | None) -> bool:
        return (account_type is not None and account_type in self.types) or \
            (owner is not None and owner in self.owners)


def detect_channel_conflicts(registrations: Iterable[Registration], *,
                             direct_owned_accounts: AbstractSet[str] = frozenset(),
                             partner_roles: Mapping[str, str] | None = None) -> list[ChannelConflict]:
    """Every channel conflict among `registrations`, by kind in CHANNEL_CONFLICT_KINDS order, then in the order
    the registrations were given; registration keys in each conflict keep that order too.

    - competing_registrations: two or more live (Submitted, Under Review, Approved) registrations for the
      same end-customer account and the same opportunity, from different partners. Registrations not yet
      linked to an opportunity compare among themselves (both claim "a deal at this customer"); one without
      an end customer has nothing to compare.
    - customer_claimed: a live registration for an end customer at which another partner holds an approved
      registration on another opportunity (or on none): the end customer is that partner's protected claim,
      whichever deal the newcomer names. One conflict per pair (the approved claim first).
    - direct_owned_account: a live registration whose end customer is in `direct_owned_accounts`. Drafts are
      not flagged: until submitted they are the partner's own notes, not a claim.
    - duplicate_approval: two or more approved registrations on one opportunity whose partners hold the same
      role in `partner_roles` (partner account -> role). A partner whose role is not supplied could hold any
      role, so its approval is checked against every other approval on that opportunity.
    """
    regs = list(registrations)
    roles = dict(partner_roles or {})
    return [*_competing(regs), *_customer_claimed(regs), *_direct_owned(regs, direct_owned_accounts),
            *_duplicate_approvals(regs, roles)]


def _competing(regs: list[Registration]) -> list[ChannelConflict]:
    groups: dict[tuple[str, str | None], list[Registration]] = {}
    for r in regs:
        if r.live and r.end_customer_account is not None:
            groups.setdefault((r.end_customer_account, r.opportunity_key), []).append(r)
    conflicts = []
    for (customer, opportunity), group in groups.items():
        partners = list(dict.fromkeys(r.partner_account for r in group))
        if len(partners) < 2:
            continue
        where = f"opportunity {opportunity}" if opportunity is not None else "no opportunity yet"
        conflicts.append(ChannelConflict(
            "competing_registrations", _keys(group),
            f"{len(group)} live registrations for end customer {customer} on {where} come from "
            f"{len(partners)} different partners ({', '.join(_name(p) for p in partners)}): "
            f"{_statuses(group)}; at most one partner's claim can be honoured"))
    return conflicts


def _customer_claimed(regs: list[Registration]) -> list[ChannelConflict]:
    approved = [r for r in regs if r.status == RegistrationStatus.APPROVED and r.end_customer_account is not None]
    conflicts = []
    for holder in approved:
        for r in regs:
            if (not r.live or r.key == holder.key or r.end_customer_account != holder.end_customer_account
                    or r.partner_account == holder.partner_account
                    or (r.opportunity_key is not None and r.opportunity_key == holder.opportunity_key)):
                continue   # the same opportunity is competing_registrations' case
            if r.status == RegistrationStatus.APPROVED and r.key < holder.key:
                continue   # two approvals: the pair once
            conflicts.append(ChannelConflict(
                "customer_claimed", (holder.key, r.key),
                f"registration {r.key} ({r.status}) by partner {_name(r.partner_account)} claims end customer "
                f"{holder.end_customer_account}, where registration {holder.key} by partner "
                f"{_name(holder.partner_account)} is approved"
                + (f" until {holder.expiry_date.isoformat()}" if holder.expiry_date else "")
                + " on another deal"))
    return conflicts


def _direct_owned(regs: list[Registration], owned: AbstractSet[str]) -> list[ChannelConflict]:
    return [ChannelConflict("direct_owned_account", (r.key,),
                            f"registration {r.key} ({r.status}) by partner {_name(r.partner_account)} claims end "
                            f"customer {r.end_customer_account}, which direct sales already owns")
            for r in regs if r.live and r.end_customer_account is not None and r.end_customer_account in owned]


def _duplicate_approvals(regs: list[Registration], roles: Mapping[str, str]) -> list[ChannelConflict]:
    by_opportunity: dict[str, list[Registration]] = {}
    for r in regs:
        if r.status == RegistrationStatus.APPROVED and r.opportunity_key is not None:
            by_opportunity.setdefault(r.opportunity_key, []).append(r)
    conflicts = []
    for opportunity, approved in by_opportunity.items():
        if len(approved) < 2:
            continue
        unknown = [r for r in approved if _role(r, roles) is None]
        known_roles = list(dict.fromkeys(role for r in approved if (role := _role(r, roles)) is not None))
        groups: list[tuple[str | None, list[Registration]]] = [
            (role, [r for r in approved if _role(r, roles) in (role, None)]) for role in known_roles]
        if not known_roles:
            groups = [(None, unknown)]
        for role, group in groups:
            if len(group) < 2:
                continue
            what = f"the role {role}" if role is not None else "a role not supplied"
            if role is not None and unknown:
                what += " (or a role not supplied)"
            conflicts.append(ChannelConflict(
                "duplicate_approval", _keys(group),
                f"{len(group)} approved registrations on opportunity {opportunity} for partners with {what} "
                f"({', '.join(f'{r.key} by {_name(r.partner_account)}' for r in group)}); only one approved "
                "registration per opportunity and partner role is allowed"))
    return conflicts


def _role(r: Registration, roles: Mapping[str, str]) -> str | None:
    return roles.get(r.partner_account) if r.partner_account is not None else None


def _keys(group: list[Registration]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.key for r in group))


def _name(partner: str | None) -> str:
    return partner if partner is not None else "(no partner account)"


def _statuses(group: list[Registration]) -> str:
    return ", ".join(f"{r.key} by {_name(r.partner_account)} is {r.status}" for r in group)
