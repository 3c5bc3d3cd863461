"""Immutable syntax nodes produced by parser.py: names still as typed, literals already decoded.

Positions are (row, column), 1-based, so compile-time errors can point a caret at the source."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

Pos = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Name:
    text: str
    pos: Pos


@dataclass(frozen=True, slots=True)
class FieldPath:
    parts: tuple[Name, ...]

    @property
    def pos(self) -> Pos:
        return self.parts[0].pos

    @property
    def dotted(self) -> str:
        return ".".join(part.text for part in self.parts)


@dataclass(frozen=True, slots=True)
class Literal:
    # kind: "string" | "number" | "boolean" | "null" | "date" | "datetime" | "date_literal".
    # value: str | int | Decimal | bool | None | datetime.date | datetime.datetime (UTC)
    #        | (NAME, n or None) for date literals.
    kind: str
    value: object
    text: str  # as written, quotes included; LIKE needs the undecoded escapes
    pos: Pos


@dataclass(frozen=True, slots=True)
class Comparison:
    field: FieldPath
    op: str  # = != < <= > >= LIKE IN "NOT IN" INCLUDES EXCLUDES
    value: Union[Literal, tuple[Literal, ...]]
    pos: Pos  # of the operator


@dataclass(frozen=True, slots=True)
class And:
    items: tuple["Condition", ...]


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple["Condition", ...]


@dataclass(frozen=True, slots=True)
class Not:
    item: "Condition"


Condition = Union[Comparison, And, Or, Not]


@dataclass(frozen=True, slots=True)
class OrderItem:
    field: FieldPath
    descending: bool
    nulls_last: bool | None  # None: the SOQL default for the direction


@dataclass(frozen=True, slots=True)
class Aggregate:
    """An aggregate function in the select list: COUNT(Id), SUM(Amount) total, ..."""

    function: str  # upper case: COUNT, COUNT_DISTINCT, SUM, AVG, MIN, MAX
    field: FieldPath | None  # None for COUNT() itself
    alias: str | None
    pos: Pos


@dataclass(frozen=True, slots=True)
class Query:
    text: str
    fields: tuple[FieldPath, ...]  # empty for SELECT COUNT()
    is_count: bool
    sobject: Name
    where: Condition | None
    order_by: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None
    offset_pos: Pos | None
    # aggregate queries: the select list in order (fields and functions), and GROUP BY
    aggregates: tuple["FieldPath | Aggregate", ...] = ()
    group_by: tuple[FieldPath, ...] = ()
