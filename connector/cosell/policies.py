"""Co-sell conflict policies for the sync, registered by name when this module is imported: the registration
state machine for a registration's status, and edit-vs-delete choices for participants.
Like every policy they are deterministic and read no clock: a merge replayed after a crash comes out the same."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, get_args

from connector.cosell.registration import STATUSES, RegistrationStatus, reachable_targets
from connector.sync.policies import FieldConflict, LatestWins, Resolution, register_policy

__all__ = [
    "register",
    "COSELL_POLICY_NAMES",
    "CosellPolicyName",
    "ParticipantDeleteWins",
    "ParticipantEditWins",
    "RegistrationStatusPolicy",
]

CosellPolicyName = Literal["registration_status", "participant_edit_wins", "participant_delete_wins"]
COSELL_POLICY_NAMES: tuple[str, ...] = get_args(CosellPolicyName)

# Which actors may have made a side's moves: the portal is the partner's side, Salesforce the vendor's;
# the clock's expiry may run on either, and a policy cannot check its date, so it is taken on trust.
_LOCAL_ACTORS = ("partner", "clock")
_REMOTE_ACTORS = ("vendor", "clock")


@dataclass(frozen=True)
class RegistrationStatusPolicy:
    """A field policy for the registration's status (Deal_Registration__c.Status__c: set it in the mapping's
    field_policies). Each side's value is judged as a move from the base by that side's actor, one or more
    steps, since several moves can happen on one side between two syncs:

    - both moves legal: Salesforce's stands; a vendor decision outranks a partner's concurrent edit (from
      Submitted the partner can only withdraw, which a review or a decision overtakes);
    - only one legal: that one wins (a partner-only move made in Salesforce loses to the portal's legal one);
    - neither legal: the base is restored on both sides (winner "salesforce", the system of record).
    With no base (never agreed on) there is nothing to judge moves from, and Salesforce's value stands.

    Used as an object's conflict_policy it also meets record-level conflicts (edit vs delete), where the edit
    wins so that a live claim is never dropped unnoticed, and other fields, whose values are not statuses;
    those fall back to latest_wins."""

    name: str = "registration_status"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        tag = f"policy {self.name}"
        if conflict.field is None:
            return _edit_wins(conflict, tag)
        base, local, remote = conflict.base, conflict.local, conflict.remote
        if not any(_is_status(v) for v in (base, local, remote)):
            fallback = LatestWins().resolve(conflict)
            return Resolution(fallback.winner, fallback.value,
                              reason=f"{tag}: {conflict.field} holds no registration status, so "
                                     f"{fallback.reason}")
        if not _is_status(base):
            return Resolution("salesforce", remote,
                              reason=f"{tag}: no agreed status to judge the moves from ({base!r}); "
                                     f"Salesforce's {remote!r} stands")
        remote_legal = _legal(base, remote, _REMOTE_ACTORS)
        local_legal = _legal(base, local, _LOCAL_ACTORS)
        remote_move, local_move = f"{base} -> {remote}", f"{base} -> {local}"
        if remote_legal and local_legal:
            return Resolution("salesforce", remote,
                              reason=f"{tag}: the vendor's {remote_move} in Salesforce stands over the partner's "
                                     f"concurrent {local_move}; a vendor decision outranks a partner's edit")
        if remote_legal:
            return Resolution("salesforce", remote,
                              reason=f"{tag}: Salesforce's {remote_move} is a legal vendor move; the portal's "
                                     f"{local_move} is not a move a partner can make")
        if local_legal:
            return Resolution("local", local,
                              reason=f"{tag}: the portal's {local_move} is a legal partner move; Salesforce's "
                                     f"{remote_move} is not a move the vendor can make")
        return Resolution("salesforce", base,
                          reason=f"{tag}: neither Salesforce's {remote_move} (not a vendor move) nor the "
                                 f"portal's {local_move} (not a partner move) is legal; {base} is restored "
                                 "on both sides")


@dataclass(frozen=True)
class ParticipantEditWins:
    """Edit vs delete on a Co_Sell_Participant__c: the edit wins and the record is restored on the side that
    deleted it; someone was still working on that party's role or split. As an object's conflict_policy
    it also meets field conflicts, which go to latest_wins, the participants' shipped default."""

    name: str = "participant_edit_wins"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        if conflict.field is not None:
            return _latest(conflict, self.name)
        return _edit_wins(conflict, f"policy {self.name}")


@dataclass(frozen=True)
class ParticipantDeleteWins:
    """Edit vs delete on a Co_Sell_Participant__c: the delete wins (the party is off the deal) and the edit is
    kept only in the conflict log. Field conflicts go to latest_wins."""

    name: str = "participant_delete_wins"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        if conflict.field is not None:
            return _latest(conflict, self.name)
        tag = f"policy {self.name}"
        if conflict.local is None and conflict.remote is not None:
            return Resolution("local", None, reason=f"{tag}: deleted locally, so it is deleted in Salesforce too")
        if conflict.remote is None and conflict.local is not None:
            return Resolution("salesforce", None,
                              reason=f"{tag}: deleted in Salesforce, so it is deleted locally too")
        return _not_edit_vs_delete(conflict, tag)


def _edit_wins(conflict: FieldConflict, tag: str) -> Resolution:
    if conflict.remote is None and conflict.local is not None:
        return Resolution("local", conflict.local,
                          reason=f"{tag}: edited locally, so it is restored in Salesforce")
    if conflict.local is None and conflict.remote is not None:
        return Resolution("salesforce", conflict.remote,
                          reason=f"{tag}: edited in Salesforce, so it is restored locally")
    return _not_edit_vs_delete(conflict, tag)


def _not_edit_vs_delete(conflict: FieldConflict, tag: str) -> Resolution:
    # the merge never sends this; if it does, Salesforce's side, the system of record, stands
    return Resolution("salesforce", conflict.remote,
                      reason=f"{tag}: not an edit-vs-delete conflict (both sides "
                             f"{'deleted' if conflict.remote is None else 'present'}); Salesforce's side kept")


def _latest(conflict: FieldConflict, name: str) -> Resolution:
    fallback = LatestWins().resolve(conflict)
    return Resolution(fallback.winner, fallback.value,
                      reason=f"policy {name} decides edit vs delete; for field {conflict.field}, {fallback.reason}")


def _is_status(value: Any) -> bool:
    return isinstance(value, str) and value in STATUSES


def _legal(base: str, value: Any, actors: tuple[str, ...]) -> bool:
    return _is_status(value) and RegistrationStatus(value) in reachable_targets(base, actors)


def register() -> None:
    """Register the co-sell policies (idempotent: registering an equal policy again is harmless)."""
    for policy in (RegistrationStatusPolicy(), ParticipantEditWins(), ParticipantDeleteWins()):
        register_policy(policy)


register()
