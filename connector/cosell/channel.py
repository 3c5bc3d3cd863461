"""Channel conflicts between deal registrations: competing partner claims, claims on accounts direct sales
owns, and a second approval for the same opportunity and role. Flags only; a channel manager decides.
Pure: the caller supplies the registrations, which accounts direct sales owns and each partner's role."""

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
    "detect_channel_conflicts",
]

ChannelConflictKind = Literal[
    "competing_registrations",  # live registrations from different partners for one customer and opportunity
    "direct_owned_account",     # a live registration on an account direct sales already owns
    "duplicate_approval",       # more than one approved registration per opportunity and partner role
]
CHANNEL_CONFLICT_KINDS: tuple[str, ...] = get_args(ChannelConflictKind)


@dataclass(frozen=True)
class ChannelConflict:
    kind: ChannelConflictKind
    registration_keys: tuple[str, ...]
    reason: str


def detect_channel_conflicts(registrations: Iterable[Registration], *,
                             direct_owned_accounts: AbstractSet[str] = frozenset(),
                             partner_roles: Mapping[str, str] | None = None) -> list[ChannelConflict]:
    """Every channel conflict among `registrations`, by kind in CHANNEL_CONFLICT_KINDS order, then in the order
    the registrations were given; registration keys in each conflict keep that order too.

    - competing_registrations: two or more live (Submitted, Under Review, Approved) registrations for the
      same end-customer account and the same opportunity, from different partners. Registrations not yet
      linked to an opportunity compare among themselves (both claim "a deal at this customer"); one without
      an end customer has nothing to compare.
    - direct_owned_account: a live registration whose end customer is in `direct_owned_accounts`. Drafts are
      not flagged: until submitted they are the partner's own notes, not a claim.
    - duplicate_approval: two or more approved registrations on one opportunity whose partners hold the same
      role in `partner_roles` (partner account -> role). A partner whose role is not supplied could hold any
      role, so its approval is checked against every other approval on that opportunity.
    """
    regs = list(registrations)
    roles = dict(partner_roles or {})
    return [*_competing(regs), *_direct_owned(regs, direct_owned_accounts), *_duplicate_approvals(regs, roles)]


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
