"""Conflict policies: which side wins when both changed the same field since the last sync, registered by name.
Pure Python with no I/O and no clock reads; a policy decides, the merge logs, so no policy can lose a value silently."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, Literal, Protocol, get_args, runtime_checkable

__all__ = [
    "POLICIES",
    "POLICY_NAMES",
    "WINNERS",
    "FieldConflict",
    "LatestWins",
    "LocalWins",
    "Manual",
    "Policy",
    "Resolution",
    "SalesforceWins",
    "UnknownPolicy",
    "Winner",
    "get_policy",
    "register_policy",
]

Winner = Literal["local", "salesforce"]
WINNERS: tuple[str, ...] = get_args(Winner)


def require_aware(name: str, value: datetime | None) -> None:
    """Refuse a naive change time: compared with an aware one it raises, and read as local time it lies."""
    if value is not None and (not isinstance(value, datetime) or value.utcoffset() is None):
        raise ValueError(f"{name} must be a timezone-aware datetime (UTC) or None, got {value!r}")


@dataclass(frozen=True)
class FieldConflict:
    """What a policy is told: both sides changed `field` of one record since they last agreed on `base`.

    `field` is None for a record-level conflict (one side edited the record, the other deleted it); then
    `base`, `local` and `remote` are the records' value dicts, None for the side that deleted it (and for
    `base` when the record was never synced), and only the resolution's winner and parked flag count."""

    object_name: str
    record_key: str  # the Salesforce Id, or the local UUID of a record Salesforce has not seen yet
    field: str | None
    base: Any
    local: Any
    remote: Any
    local_changed_at: datetime | None
    remote_changed_at: datetime | None

    def __post_init__(self) -> None:
        require_aware("local_changed_at", self.local_changed_at)
        require_aware("remote_changed_at", self.remote_changed_at)


@dataclass(frozen=True)
class Resolution:
    """A policy's decision. `value` is what both sides end with; it may be neither side's value (a policy
    may restore a legal state), in which case both sides are written."""

    winner: Winner
    value: Any
    parked: bool = False  # the value is provisional and the conflict waits for an admin (`manual`)
    reason: str = ""

    def __post_init__(self) -> None:
        if self.winner not in WINNERS:
            raise ValueError(f"{self.winner!r} is not a winner; choose one of: {', '.join(WINNERS)}")


@runtime_checkable
class Policy(Protocol):
    """A conflict policy. It must be deterministic (same conflict, same resolution) and must not read the
    clock or do I/O: merges are replayed after a crash and must come out the same."""

    name: str

    def resolve(self, conflict: FieldConflict) -> Resolution: ...


# -- the built-in policies ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class SalesforceWins:
    name: str = "salesforce_wins"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        return Resolution("salesforce", conflict.remote, reason="policy salesforce_wins: Salesforce's value kept")


@dataclass(frozen=True)
class LocalWins:
    name: str = "local_wins"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        return Resolution("local", conflict.local, reason="policy local_wins: the local value kept")


@dataclass(frozen=True)
class LatestWins:
    """The side that changed later wins. A side without a change time counts as older, since nothing
    says it is recent; an exact tie goes to Salesforce, the system of record."""

    name: str = "latest_wins"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        local_at, remote_at = conflict.local_changed_at, conflict.remote_changed_at
        if local_at is not None and (remote_at is None or local_at > remote_at):
            when = "Salesforce's change time is unknown" if remote_at is None else \
                f"{_iso(local_at)} is later than Salesforce's {_iso(remote_at)}"
            return Resolution("local", conflict.local, reason=f"policy latest_wins: local changed later ({when})")
        if remote_at is not None and (local_at is None or remote_at > local_at):
            when = "the local change time is unknown" if local_at is None else \
                f"{_iso(remote_at)} is later than the local {_iso(local_at)}"
            return Resolution("salesforce", conflict.remote,
                              reason=f"policy latest_wins: Salesforce changed later ({when})")
        when = "neither change time is known" if remote_at is None else f"both changed at {_iso(remote_at)}"
        return Resolution("salesforce", conflict.remote,
                          reason=f"policy latest_wins: a tie ({when}); ties go to Salesforce")


@dataclass(frozen=True)
class Manual:
    """Holds the conflict for an admin. Until then Salesforce's value stands, because the sales team works
    from the org; the local value is not lost, it waits in the conflict log."""

    name: str = "manual"

    def resolve(self, conflict: FieldConflict) -> Resolution:
        return Resolution("salesforce", conflict.remote, parked=True,
                          reason="policy manual: held for an admin; Salesforce's value kept until then")


def _iso(moment: datetime) -> str:
    return moment.isoformat()


# -- the registry --------------------------------------------------------------------------------------------

# The one registry of conflict policies, names and implementations together. Mapping files are
# validated against its names (connector.mapping imports this module, never the other way round), so a
# name a mapping may use always has an implementation.
_REGISTRY: dict[str, Policy] = {}
_POLICY_NAME_RE = re.compile(r"[a-z][a-z0-9_]*")

POLICIES: Mapping[str, Policy] = MappingProxyType(_REGISTRY)
"""The registered policies by name, read-only: add to it with `register_policy`."""


class _PolicyNames(AbstractSet[str]):
    """The registered policy names, sorted, read-only (a view of the registry)."""

    def __contains__(self, name: object) -> bool:
        return name in _REGISTRY

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(_REGISTRY))

    def __len__(self) -> int:
        return len(_REGISTRY)

    def __repr__(self) -> str:
        return f"POLICY_NAMES({', '.join(self)})"


POLICY_NAMES: AbstractSet[str] = _PolicyNames()


class UnknownPolicy(KeyError):
    """A policy name nobody registered; the message lists the registered ones."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(name)
        self.name, self.known = name, known

    def __str__(self) -> str:  # KeyError would show the repr of the whole message, quotes and all
        return (f"{self.name!r} is not a registered conflict policy; choose one of: {', '.join(self.known)} "
                "(or register it with connector.sync.policies.register_policy)")


def register_policy(policy: Policy) -> Policy:
    """Register `policy` under `policy.name` (idempotent for the same policy) and make the name valid in
    mapping files loaded from now on. Returns the policy, so it can be used as a class decorator's result."""
    name = getattr(policy, "name", None)
    if not callable(getattr(policy, "resolve", None)) or not isinstance(name, str):
        raise TypeError(f"{policy!r} is not a conflict policy: it needs a `name` (str) and a "
                        "`resolve(conflict) -> Resolution` method")
    existing = _REGISTRY.get(name)
    if existing is not None and existing is not policy and existing != policy:
        raise ValueError(f"a different conflict policy is already registered as {name!r} ({existing!r}); "
                         "choose another name")
    if not _POLICY_NAME_RE.fullmatch(name):
        raise ValueError(f"{name!r} is not a usable policy name: use lower-case letters, digits and "
                         "underscores, starting with a letter (like 'registration_state_machine')")
    _REGISTRY[name] = policy
    return policy


def get_policy(name: str) -> Policy:
    """The policy registered as `name`; UnknownPolicy (a KeyError) names the registered ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownPolicy(name, sorted(_REGISTRY)) from None


for _builtin in (SalesforceWins(), LocalWins(), LatestWins(), Manual()):
    register_policy(_builtin)
del _builtin
