"""Who takes part in a co-sell deal and how it is credited: participant roles, attribution and split types.
Pure: the org's own Role__c picklist, as mirrored, is handed in; nothing here reads Salesforce or a database."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

__all__ = [
    "ATTRIBUTIONS",
    "Attribution",
    "ROLES",
    "Role",
    "RoleSet",
    "RoleValue",
    "SPLIT_TYPES",
    "SplitType",
    "UnknownRole",
]


class Role(StrEnum):
    """The participant roles the connector knows by name; the value is the picklist value in the org."""

    VENDOR = "Vendor"
    CLOUD_PROVIDER = "Cloud Provider"
    SYSTEM_INTEGRATOR = "System Integrator"
    RESELLER = "Reseller"
    DISTRIBUTOR = "Distributor"
    REFERRAL_PARTNER = "Referral Partner"


class Attribution(StrEnum):
    """How a participant is credited: it found the deal, helped win it, or implements it after the sale."""

    SOURCED = "Sourced"
    INFLUENCED = "Influenced"
    DELIVERED = "Delivered"


class SplitType(StrEnum):
    """Revenue splits on one opportunity total 100%; influence (overlay) splits may total anything."""

    REVENUE = "Revenue"
    INFLUENCE = "Influence"


ROLES: tuple[str, ...] = tuple(member.value for member in Role)
ATTRIBUTIONS: tuple[str, ...] = tuple(member.value for member in Attribution)
SPLIT_TYPES: tuple[str, ...] = tuple(member.value for member in SplitType)


@dataclass(frozen=True)
class RoleValue:
    """One role value an org may hold: a built-in `role`, or a custom one (role None) the org added."""

    value: str
    label: str
    role: Role | None
    active: bool = True

    @property
    def custom(self) -> bool:
        return self.role is None


class UnknownRole(ValueError):
    """A role value that neither the connector nor the org's picklist knows; the message lists the known ones."""

    def __init__(self, value: object, known: Iterable[str]) -> None:
        self.value, self.known = value, tuple(known)
        super().__init__(f"{value!r} is not a participant role; choose one of: {', '.join(self.known)}")


class RoleSet:
    """The roles a participant may hold in one org: the built-in roles plus whatever the org's Role__c
    picklist adds. Values match exactly (Salesforce picklist values are case-sensitive), so a value that
    differs from a built-in only in case is kept as a custom role rather than guessed to be the built-in."""

    __slots__ = ("_by_value",)

    def __init__(self, values: Iterable[RoleValue] = ()) -> None:
        by_value: dict[str, RoleValue] = {v.value: RoleValue(v.value, v.value, v) for v in Role}
        for entry in values:
            by_value[entry.value] = entry
        self._by_value = by_value

    @classmethod
    def builtin(cls) -> RoleSet:
        return cls()

    @classmethod
    def from_picklist(cls, values: Iterable[Any]) -> RoleSet:
        """The role set of an org from its Role__c picklist values as mirrored: plain strings, describe
        entries ({"value", "label", "active"}) or objects with those attributes (the schema mirror's
        PicklistEntry). Inactive values are kept, flagged inactive, because old participants still hold
        them; the built-in roles stay known even where the org lacks them."""
        entries: list[RoleValue] = []
        for raw in values:
            value, label, active = _picklist_entry(raw)
            builtin = Role(value) if value in ROLES else None
            entries.append(RoleValue(value, label or value, builtin, active))
        return cls(entries)

    def __contains__(self, value: object) -> bool:
        return isinstance(value, str) and value in self._by_value

    def __iter__(self) -> Iterator[RoleValue]:
        return iter(self._by_value.values())

    def __len__(self) -> int:
        return len(self._by_value)

    def __repr__(self) -> str:
        return f"RoleSet({', '.join(self.values)})"

    @property
    def values(self) -> tuple[str, ...]:
        return tuple(self._by_value)

    @property
    def custom(self) -> tuple[str, ...]:
        """The org's own roles, beyond the built-in ones."""
        return tuple(v.value for v in self._by_value.values() if v.custom)

    def get(self, value: str) -> RoleValue | None:
        return self._by_value.get(value)

    def require(self, value: object) -> RoleValue:
        """The role value, or UnknownRole naming the valid choices."""
        found = self._by_value.get(value) if isinstance(value, str) else None
        if found is None:
            raise UnknownRole(value, self.values)
        return found

    def is_custom(self, value: str) -> bool:
        return self.require(value).custom


def _picklist_entry(raw: Any) -> tuple[str, str | None, bool]:
    if isinstance(raw, str):
        value, label, active = raw, None, True
    elif isinstance(raw, Mapping):
        value, label, active = raw.get("value"), raw.get("label"), raw.get("active", True)
    else:
        value, label, active = getattr(raw, "value", None), getattr(raw, "label", None), getattr(raw, "active", True)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"a Role__c picklist value must be a non-empty string, got {raw!r}")
    return value, label if isinstance(label, str) and label else None, bool(active)
