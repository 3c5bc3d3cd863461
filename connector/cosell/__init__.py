"""The co-sell domain: participant roles and splits, the deal-registration state machine and edit lock, and
channel-conflict detection; roles, splits, registration and channel import only the standard library.
The co-sell conflict policies load, and register with the sync, only when first used (see __getattr__)."""

from __future__ import annotations

import importlib
from typing import Any

from connector.cosell.channel import (
    CHANNEL_CONFLICT_KINDS,
    ChannelConflict,
    ChannelConflictKind,
    DEFAULT_DIRECT_ACCOUNT_TYPES,
    DirectOwnership,
    detect_channel_conflicts,
)
from connector.cosell.registration import (
    ACTIONS,
    ACTORS,
    FINAL_STATUSES,
    IN_REVIEW_STATUSES,
    LIVE_STATUSES,
    LOCKED_FIELDS,
    STATUSES,
    TRANSITIONS,
    Action,
    Actor,
    EditLock,
    IllegalTransition,
    Registration,
    RegistrationStatus,
    Transition,
    TransitionResult,
    allowed_targets,
    expire_due,
    reachable_targets,
    transition,
)
from connector.cosell.roles import (
    ATTRIBUTIONS,
    ROLES,
    SPLIT_TYPES,
    Attribution,
    Role,
    RoleSet,
    RoleValue,
    SplitType,
    UnknownRole,
)
from connector.cosell.splits import (
    SPLIT_PROBLEM_KINDS,
    Participant,
    SplitError,
    SplitProblem,
    SplitProblemKind,
    check_splits,
    validate_splits,
)

__all__ = [
    # roles
    "ATTRIBUTIONS",
    "Attribution",
    "ROLES",
    "Role",
    "RoleSet",
    "RoleValue",
    "SPLIT_TYPES",
    "SplitType",
    "UnknownRole",
    # splits
    "Participant",
    "SPLIT_PROBLEM_KINDS",
    "SplitError",
    "SplitProblem",
    "SplitProblemKind",
    "check_splits",
    "validate_splits",
    # registration
    "ACTIONS",
    "ACTORS",
    "Action",
    "Actor",
    "EditLock",
    "FINAL_STATUSES",
    "IN_REVIEW_STATUSES",
    "IllegalTransition",
    "LIVE_STATUSES",
    "LOCKED_FIELDS",
    "Registration",
    "RegistrationStatus",
    "STATUSES",
    "TRANSITIONS",
    "Transition",
    "TransitionResult",
    "allowed_targets",
    "expire_due",
    "reachable_targets",
    "transition",
    # channel
    "CHANNEL_CONFLICT_KINDS",
    "ChannelConflict",
    "ChannelConflictKind",
    "DEFAULT_DIRECT_ACCOUNT_TYPES",
    "DirectOwnership",
    "detect_channel_conflicts",
    # conflict policies, registered by these names: registration_status, participant_edit_wins and
    # participant_delete_wins (COSELL_POLICY_NAMES); loaded on first use
    "COSELL_POLICY_NAMES",
    "CosellPolicyName",
    "ParticipantDeleteWins",
    "ParticipantEditWins",
    "RegistrationStatusPolicy",
]

# Importing connector.cosell.policies registers its policies in the sync's process-wide registry and makes
# their names valid in mapping files. Loading it lazily keeps that out of a plain `import connector.cosell`
# (a report computing attribution should not change which policies a mapping may name); the composition
# root imports connector.cosell.policies before it loads the mapping.
_POLICY_EXPORTS = frozenset({"COSELL_POLICY_NAMES", "CosellPolicyName", "ParticipantDeleteWins",
                             "ParticipantEditWins", "RegistrationStatusPolicy"})


def __getattr__(name: str) -> Any:
    if name in _POLICY_EXPORTS:
        return getattr(importlib.import_module("connector.cosell.policies"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
