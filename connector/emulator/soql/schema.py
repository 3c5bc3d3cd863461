"""The read-only schema view the SOQL compiler needs (structural Protocols).

The org emulator's describe metadata satisfies these; tests use small fakes."""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable


@runtime_checkable
class FieldInfo(Protocol):
    name: str  # canonical API name, e.g. "AccountId"
    type: str  # describe type: id, reference, string, picklist, date, datetime, address, ...
    reference_to: list[str]  # target objects of a reference; several when polymorphic
    relationship_name: str | None  # e.g. "Account" for AccountId
    compound_field_name: str | None  # e.g. "BillingAddress" for BillingStreet


@runtime_checkable
class ObjectInfo(Protocol):
    name: str  # canonical, e.g. "Opportunity"

    def field(self, name: str) -> FieldInfo | None:
        """Case-insensitive lookup by API name."""

    def relationship(self, name: str) -> FieldInfo | None:
        """Case-insensitive lookup of the reference field whose relationship_name is `name`."""

    @property
    def fields(self) -> Sequence[FieldInfo]:
        """All fields in describe order."""


@runtime_checkable
class SchemaLookup(Protocol):
    def get_object(self, name: str) -> ObjectInfo | None:
        """Case-insensitive lookup by API name."""
