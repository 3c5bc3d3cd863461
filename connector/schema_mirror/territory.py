"""The org's active Enterprise Territory Management model as mirrored: territories, types, user
assignments and account assignment rules, the hierarchy in one recursive SQL query each way, and
a local evaluator that says which territories the rules give an account. It only reads mirrored
tables, never writes one, and never runs rule text through eval()."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal, get_args

from sqlalchemy import (CTE, Boolean, Connection, Integer, Row, String, Text, cast, column, false, inspect,
                        literal_column, or_, select, table)
from sqlalchemy.sql import ColumnElement
from sqlalchemy.sql.expression import TableClause

from connector.errors import ConfigurationError
from connector.schema_mirror import naming

__all__ = ["ASSOCIATION_CAUSES", "MAX_DEPTH", "OPERATIONS", "AssignmentRule", "BooleanFilter",
           "BooleanFilterError", "Model", "Operation", "RuleItem", "Territory", "TerritoryError",
           "TerritoryModel", "TerritoryRuleError", "TerritoryType", "UserAssignment", "account_territories",
           "ancestors", "descendants", "hierarchy_cte", "parse_boolean_filter"]

Operation = Literal["equals", "notEqual", "lessThan", "greaterThan", "lessOrEqual", "greaterOrEqual",
                    "contains", "notContain", "startsWith", "includes", "excludes"]
OPERATIONS: tuple[Operation, ...] = get_args(Operation)
AssociationCause = Literal["Territory2AssociationManual", "Territory2AssociationRules"]
ASSOCIATION_CAUSES: tuple[AssociationCause, ...] = get_args(AssociationCause)

# Salesforce forbids cycles in a model; the cap only keeps a corrupt mirror from recursing forever.
MAX_DEPTH = 1000


class TerritoryError(ConfigurationError):
    """The mirrored territory tables cannot answer (missing tables or columns, two active models)."""


class TerritoryRuleError(TerritoryError):
    """An active assignment rule the local evaluator cannot run; names the rule and what is wrong."""


class BooleanFilterError(ValueError):
    def __init__(self, expression: str, position: int, problem: str):
        super().__init__(f"BooleanFilter {expression!r}: {problem} at position {position + 1}")
        self.expression, self.position = expression, position


# -- the mirrored tables ----------------------------------------------------------------------------

_COLUMNS: dict[str, dict[str, Any]] = {
    "Territory2Model": {"sfid": String, "name": String, "developername": String, "state": String},
    "Territory2Type": {"sfid": String, "developername": String, "masterlabel": String, "priority": Integer},
    "Territory2": {"sfid": String, "name": String, "developername": String, "territory2modelid": String,
                   "territory2typeid": String, "parentterritory2id": String},
    "UserTerritory2Association": {"sfid": String, "userid": String, "territory2id": String,
                                  "roleinterritory2": String, "isactive": Boolean},
    "ObjectTerritory2Association": {"sfid": String, "objectid": String, "territory2id": String,
                                    "associationcause": String, "sobjecttype": String},
    "ObjectTerritory2AssignmentRule": {"sfid": String, "developername": String, "masterlabel": String,
                                       "territory2modelid": String, "isactive": Boolean,
                                       "booleanfilter": String, "objecttype": String},
    "ObjectTerritory2AssignmentRuleItem": {"sfid": String, "ruleid": String, "sortorder": Integer,
                                           "field": String, "operation": String, "value": String},
    "RuleTerritory2Association": {"sfid": String, "ruleid": String, "territory2id": String,
                                  "isinherited": Boolean},
}
_TERRITORY_COLUMNS = tuple(_COLUMNS["Territory2"])


def _clause(object_name: str, schema: str | None, prefix: str, *, with_isdeleted: bool = False) -> TableClause:
    columns = dict(_COLUMNS[object_name])
    if with_isdeleted:
        columns["isdeleted"] = Boolean
    return table(naming.table_name(object_name, prefix), *(column(n, t) for n, t in columns.items()),
                 schema=schema)


def _live(t: TableClause) -> list[ColumnElement[bool]]:
    if "isdeleted" not in t.c:
        return []
    return [or_(t.c.isdeleted.is_(None), t.c.isdeleted == false())]


class _Tables:
    """The territory tables of one mirror, checked against the contract once."""

    def __init__(self, connection: Connection, schema: str | None, prefix: str):
        inspector = inspect(connection)
        existing = set(inspector.get_table_names(schema=schema))
        self.by_object: dict[str, TableClause] = {}
        for object_name, wanted in _COLUMNS.items():
            name = naming.table_name(object_name, prefix)
            if name not in existing:
                where = f" in schema {schema}" if schema else ""
                raise TerritoryError(f"no mirrored table {name}{where}: map {object_name} (Enterprise Territory "
                                     "Management must be enabled in the org) before reading territories")
            have = {c["name"] for c in inspector.get_columns(name, schema=schema)}
            missing = [c for c in wanted if c not in have]
            if missing:
                raise TerritoryError(f"mirrored table {name} lacks column(s) {', '.join(missing)}")
            self.by_object[object_name] = _clause(object_name, schema, prefix, with_isdeleted="isdeleted" in have)

    def __getitem__(self, object_name: str) -> TableClause:
        return self.by_object[object_name]


# -- BooleanFilter ----------------------------------------------------------------------------------

_TOKEN = re.compile(r"(?P<number>\d+)|(?P<word>[A-Za-z]+)|(?P<punct>[()])")


@dataclass(frozen=True)
class BooleanFilter:
    """A parsed BooleanFilter such as `1 AND (2 OR 3)` over rule items numbered by SortOrder.

    AND binds tighter than OR, NOT tighter than both; no expression means every item must hold."""

    expression: str | None
    _evaluate: Callable[[Mapping[int, bool]], bool] = field(repr=False, compare=False)
    item_numbers: frozenset[int] = frozenset()

    def evaluate(self, results: Mapping[int, bool]) -> bool:
        return self._evaluate(results)


def parse_boolean_filter(expression: str | None) -> BooleanFilter:
    """Tokenise and parse by recursive descent; a malformed filter raises BooleanFilterError."""
    if expression is None or not expression.strip():
        return BooleanFilter(expression, lambda results: all(results.values()))
    tokens: list[tuple[str, str, int]] = []  # (kind, text, position)
    position = 0
    while True:
        while position < len(expression) and expression[position].isspace():
            position += 1
        if position == len(expression):
            break
        m = _TOKEN.match(expression, position)
        if m is None:
            raise BooleanFilterError(expression, position, f"unexpected character {expression[position]!r}")
        kind, text = m.lastgroup or "", m.group()
        if kind == "word":
            if text.upper() not in ("AND", "OR", "NOT"):
                raise BooleanFilterError(expression, position, f"unknown word {text!r} (use AND, OR, NOT)")
            kind = text = text.upper()
        tokens.append((kind, text, position))
        position = m.end()
    numbers: set[int] = set()
    index = 0

    def peek() -> str | None:
        return tokens[index][0] if index < len(tokens) else None

    def take(expected: str) -> tuple[str, str, int]:
        nonlocal index
        if index >= len(tokens):
            raise BooleanFilterError(expression, len(expression.rstrip()), f"expected {expected}, found the end")
        token = tokens[index]
        index += 1
        return token

    Node = Callable[[Mapping[int, bool]], bool]

    def disjunction() -> Node:
        parts = [conjunction()]
        while peek() == "OR":
            take("OR")
            parts.append(conjunction())
        return parts[0] if len(parts) == 1 else (lambda r, ps=tuple(parts): any(p(r) for p in ps))

    def conjunction() -> Node:
        parts = [negation()]
        while peek() == "AND":
            take("AND")
            parts.append(negation())
        return parts[0] if len(parts) == 1 else (lambda r, ps=tuple(parts): all(p(r) for p in ps))

    def negation() -> Node:
        if peek() == "NOT":
            take("NOT")
            inner = negation()
            return lambda r: not inner(r)
        kind, text, start = take("an item number, NOT or (")
        if kind == "number":
            n = int(text)
            numbers.add(n)
            return lambda r: bool(r.get(n, False))
        if kind == "punct" and text == "(":
            inner = disjunction()
            kind, text, start = take(")")
            if text != ")":
                raise BooleanFilterError(expression, start, f"expected ), found {text!r}")
            return inner
        raise BooleanFilterError(expression, start, f"expected an item number, NOT or (, found {text!r}")

    root = disjunction()
    if index != len(tokens):
        raise BooleanFilterError(expression, tokens[index][2], f"unexpected {tokens[index][1]!r}")
    return BooleanFilter(expression, root, frozenset(numbers))


# -- rule items -------------------------------------------------------------------------------------

def _is_blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and value.strip() == "")


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _number(text: str) -> Decimal | None:
    try:
        number = Decimal(text.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def _text(value: Any) -> str:
    """How a field value reads as text in a rule: blank for null, true/false, plain numbers."""
    if _is_blank(value):
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return format(Decimal(str(value)), "f")
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    return str(value)


def _equals(actual: Any, candidate: str) -> bool:
    if candidate == "":
        return _is_blank(actual)
    if _is_blank(actual):
        return False
    if _is_number(actual):
        wanted = _number(candidate)
        if wanted is not None:
            return Decimal(str(actual)) == wanted
    return _text(actual).casefold() == candidate.casefold()


def _ordered(actual: Any, raw: str) -> tuple[Any, Any] | None:
    """The pair to compare for lessThan & co.: numbers as Decimals, dates as dates, else folded text."""
    if _is_blank(actual) or isinstance(actual, bool):
        return None
    if _is_number(actual):
        wanted = _number(raw)
        return None if wanted is None else (Decimal(str(actual)), wanted)
    if isinstance(actual, dt.date):
        parse = dt.datetime.fromisoformat if isinstance(actual, dt.datetime) else dt.date.fromisoformat
        try:
            return actual, parse(raw.strip())
        except ValueError:
            return None
    left, right = _number(str(actual)), _number(raw)
    if left is not None and right is not None:  # numbers mirrored as text
        return left, right
    return str(actual).casefold(), raw.strip().casefold()


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "lessThan": lambda a, b: a < b, "greaterThan": lambda a, b: a > b,
    "lessOrEqual": lambda a, b: a <= b, "greaterOrEqual": lambda a, b: a >= b,
}


@dataclass(frozen=True)
class RuleItem:
    """One criterion of an assignment rule: `Account.<Field> <Operation> <Value>`.

    equals/notEqual take a comma-separated list (any of); an empty Value with equals matches an
    empty field. Text compares case-insensitively; numbers (and text that reads as numbers) compare
    as Decimals. includes/excludes read the field as a multi-select picklist (`a;b`)."""

    sort_order: int
    field: str
    operation: Operation
    value: str | None = None
    id: str | None = None

    @property
    def field_name(self) -> str:
        """The account field the item reads, lowercased as the mirror names its column."""
        return naming.column_name(self.field.rsplit(".", 1)[-1])

    def matches(self, account: Mapping[str, Any]) -> bool:
        """`account` keyed by lowercased field names; a missing field counts as empty."""
        actual = account.get(self.field_name)
        raw = self.value or ""
        op = self.operation
        if op in _COMPARE:
            if raw.strip() == "":
                return False
            pair = _ordered(actual, raw)
            try:
                return pair is not None and _COMPARE[op](*pair)
            except TypeError:  # a naive datetime against an aware one
                return False
        candidates = [c.strip() for c in raw.split(",")] if raw.strip() else [""]
        if op == "equals":
            return any(_equals(actual, c) for c in candidates)
        if op == "notEqual":
            return not any(_equals(actual, c) for c in candidates)
        text = _text(actual).casefold()
        needles = [c.casefold() for c in candidates if c]
        if op == "contains":
            return any(n in text for n in needles)
        if op == "notContain":
            return not any(n in text for n in needles)
        if op == "startsWith":
            return any(text.startswith(n) for n in needles)
        if op in ("includes", "excludes"):
            chosen = {part.strip() for part in text.split(";") if part.strip()}
            # `a;b` in a value asks for both a and b to be selected
            hit = any(all(p.strip() in chosen for p in n.split(";") if p.strip()) for n in needles)
            return hit if op == "includes" else not hit
        raise TerritoryRuleError(f"rule item {self.id or self.sort_order}: unknown operation {op!r}; "
                                 f"known: {', '.join(OPERATIONS)}")


# -- the model --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Model:
    id: str
    name: str | None
    developer_name: str | None
    state: str | None


@dataclass(frozen=True)
class TerritoryType:
    id: str
    developer_name: str | None
    master_label: str | None
    priority: int | None


@dataclass(frozen=True)
class Territory:
    id: str
    name: str | None
    developer_name: str | None
    model_id: str | None
    type_id: str | None
    parent_id: str | None


@dataclass(frozen=True)
class UserAssignment:
    id: str
    user_id: str
    territory_id: str
    role: str | None
    is_active: bool


@dataclass(frozen=True)
class AssignmentRule:
    id: str
    developer_name: str | None
    master_label: str | None
    is_active: bool
    boolean_filter: str | None
    object_type: str | None
    items: tuple[RuleItem, ...]
    territory_ids: frozenset[str]

    def compiled(self) -> BooleanFilter:
        """The parsed filter, checked against the rule's items; raises TerritoryRuleError if unusable."""
        try:
            parsed = parse_boolean_filter(self.boolean_filter)
        except BooleanFilterError as exc:
            raise TerritoryRuleError(f"assignment rule {self.developer_name} ({self.id}): {exc}") from exc
        numbers = {item.sort_order for item in self.items}
        unknown = sorted(parsed.item_numbers - numbers)
        if unknown:
            raise TerritoryRuleError(f"assignment rule {self.developer_name} ({self.id}): BooleanFilter "
                                     f"{self.boolean_filter!r} names item(s) {unknown} but its items are "
                                     f"{sorted(numbers)}")
        return parsed


class TerritoryModel:
    """The Active Territory2Model with its territories, types, user assignments and rules.

    An org with no active model loads as an empty model (`model` is None) that matches nothing."""

    def __init__(self, model: Model | None, territories: Iterable[Territory] = (),
                 types: Iterable[TerritoryType] = (), user_assignments: Iterable[UserAssignment] = (),
                 rules: Iterable[AssignmentRule] = ()):
        self.model = model
        self.territories: dict[str, Territory] = {t.id: t for t in territories}
        self.types: dict[str, TerritoryType] = {t.id: t for t in types}
        self.user_assignments: list[UserAssignment] = list(user_assignments)
        self.rules: list[AssignmentRule] = list(rules)
        self._account_rules: list[tuple[AssignmentRule, BooleanFilter]] = []
        for rule in self.rules:
            if not rule.is_active or (rule.object_type or "Account") != "Account":
                continue
            for item in rule.items:
                if item.operation not in OPERATIONS:
                    raise TerritoryRuleError(f"assignment rule {rule.developer_name} ({rule.id}) item "
                                             f"{item.sort_order}: unknown operation {item.operation!r}; "
                                             f"known: {', '.join(OPERATIONS)}")
            if rule.items:  # a rule without criteria gives no account a territory
                self._account_rules.append((rule, rule.compiled()))

    @classmethod
    def load(cls, connection: Connection, schema: str | None = None, prefix: str = "") -> TerritoryModel:
        tables = _Tables(connection, schema, prefix)
        tm = tables["Territory2Model"]
        active = connection.execute(select(tm).where(tm.c.state == "Active", *_live(tm))).all()
        if not active:
            return cls(None)
        if len(active) > 1:
            raise TerritoryError(f"{len(active)} Territory2Model rows are Active "
                                 f"({', '.join(r.sfid for r in active)}); an org has at most one")
        m = active[0]
        model = Model(m.sfid, m.name, m.developername, m.state)

        t2 = tables["Territory2"]
        territories = [Territory(r.sfid, r.name, r.developername, r.territory2modelid, r.territory2typeid,
                                 r.parentterritory2id)
                       for r in connection.execute(select(t2).where(t2.c.territory2modelid == model.id, *_live(t2)))]
        in_model = {t.id for t in territories}

        tt = tables["Territory2Type"]
        types = [TerritoryType(r.sfid, r.developername, r.masterlabel, r.priority)
                 for r in connection.execute(select(tt).where(*_live(tt)))]

        ua = tables["UserTerritory2Association"]
        assignments = [UserAssignment(r.sfid, r.userid, r.territory2id, r.roleinterritory2, bool(r.isactive))
                       for r in connection.execute(select(ua).where(*_live(ua))) if r.territory2id in in_model]

        rule_t = tables["ObjectTerritory2AssignmentRule"]
        rule_rows = connection.execute(
            select(rule_t).where(rule_t.c.territory2modelid == model.id, *_live(rule_t))).all()
        rule_ids = select(rule_t.c.sfid).where(rule_t.c.territory2modelid == model.id)
        item_t = tables["ObjectTerritory2AssignmentRuleItem"]
        items: dict[str, list[RuleItem]] = {}
        for r in connection.execute(select(item_t).where(item_t.c.ruleid.in_(rule_ids), *_live(item_t))):
            items.setdefault(r.ruleid, []).append(
                RuleItem(sort_order=r.sortorder, field=r.field or "", operation=r.operation, value=r.value,
                         id=r.sfid))
        link_t = tables["RuleTerritory2Association"]
        links: dict[str, set[str]] = {}
        for r in connection.execute(select(link_t).where(link_t.c.ruleid.in_(rule_ids), *_live(link_t))):
            if r.territory2id in in_model:
                links.setdefault(r.ruleid, set()).add(r.territory2id)
        rules = [AssignmentRule(r.sfid, r.developername, r.masterlabel, bool(r.isactive), r.booleanfilter,
                                r.objecttype, _numbered(items.get(r.sfid, [])), frozenset(links.get(r.sfid, ())))
                 for r in rule_rows]
        return cls(model, territories, types, assignments, rules)

    def matching_territories(self, account: Mapping[str, Any]) -> set[str]:
        """Ids of the territories the active Account rules give this account.

        `account` maps field names, as mirrored columns (`billingcountry`) or API names
        (`BillingCountry`), to values; a field that is absent counts as empty."""
        fields = {naming.column_name(str(k)).lower(): v for k, v in account.items()}
        out: set[str] = set()
        for rule, boolean_filter in self._account_rules:
            results = {item.sort_order: item.matches(fields) for item in rule.items}
            if boolean_filter.evaluate(results):
                out |= rule.territory_ids
        return out

    @property
    def rule_fields(self) -> set[str]:
        """The account columns the active rules read: a mapping that leaves one out of the mirror
        makes every account look empty there, so callers can check these exist."""
        return {item.field_name for rule, _ in self._account_rules for item in rule.items}

    def users(self, territory_id: str, *, active_only: bool = True) -> list[UserAssignment]:
        return [a for a in self.user_assignments
                if a.territory_id == territory_id and (a.is_active or not active_only)]

    def by_developer_name(self, developer_name: str) -> Territory:
        for territory in self.territories.values():
            if territory.developer_name == developer_name:
                return territory
        raise KeyError(f"no territory {developer_name!r} in model "
                       f"{self.model.developer_name if self.model else '(none active)'}")


def _numbered(items: Sequence[RuleItem]) -> tuple[RuleItem, ...]:
    """Items by SortOrder; an item without one takes its position, as filters count from 1."""
    ordered = sorted(items, key=lambda i: (i.sort_order is None, i.sort_order or 0))
    return tuple(item if item.sort_order is not None else
                 RuleItem(n, item.field, item.operation, item.value, item.id)
                 for n, item in enumerate(ordered, start=1))


# -- hierarchy in SQL -------------------------------------------------------------------------------

def _one() -> ColumnElement[int]:
    # a plain integer literal, not a bind: PostgreSQL types a recursive CTE's columns from the anchor
    return literal_column("1", Integer)


def hierarchy_cte(*, schema: str | None = None, prefix: str = "", model_id: str | None = None) -> CTE:
    """A recursive CTE of (sfid, parentterritory2id, depth, path): roots have depth 1 and path their
    own Id; each level below adds 1 and `/<Id>`. Restrict it to one model with `model_id`."""
    t = _clause("Territory2", schema, prefix)
    anchor = select(t.c.sfid, t.c.parentterritory2id, _one().label("depth"),
                    cast(t.c.sfid, Text).label("path")).where(t.c.parentterritory2id.is_(None))
    if model_id is not None:
        anchor = anchor.where(t.c.territory2modelid == model_id)
    tree = anchor.cte("territory_hierarchy", recursive=True)
    child = t.alias("child")
    return tree.union_all(
        select(child.c.sfid, child.c.parentterritory2id, tree.c.depth + _one(),
               cast(tree.c.path + literal_column("'/'", Text) + child.c.sfid, Text))
        .where(child.c.parentterritory2id == tree.c.sfid, tree.c.depth < MAX_DEPTH))


def _walk(connection: Connection, territory_id: str, *, up: bool, schema: str | None,
          prefix: str) -> list[Row[Any]]:
    t = _clause("Territory2", schema, prefix)
    start = select(*t.c, literal_column("0", Integer).label("depth")).where(t.c.sfid == territory_id)
    walk = start.cte("territory_ancestors" if up else "territory_descendants", recursive=True)
    step = t.alias("step")
    link = step.c.sfid == walk.c.parentterritory2id if up else step.c.parentterritory2id == walk.c.sfid
    walk = walk.union_all(select(*step.c, walk.c.depth + _one()).where(link, walk.c.depth < MAX_DEPTH))
    order = [walk.c.depth] if up else [walk.c.depth, walk.c.name, walk.c.sfid]
    return list(connection.execute(select(walk).where(walk.c.depth > 0).order_by(*order)).all())


def ancestors(connection: Connection, territory_id: str, *, schema: str | None = None,
              prefix: str = "") -> list[Row[Any]]:
    """The territory's parent, its parent, ... up to the root, in one query; `depth` 1 is the parent."""
    return _walk(connection, territory_id, up=True, schema=schema, prefix=prefix)


def descendants(connection: Connection, territory_id: str, *, schema: str | None = None,
                prefix: str = "") -> list[Row[Any]]:
    """Every territory below this one, in one query, by depth (1 = children) then name."""
    return _walk(connection, territory_id, up=False, schema=schema, prefix=prefix)


def account_territories(connection: Connection, account_sfid: str, *, schema: str | None = None,
                        prefix: str = "", cause: AssociationCause | None = None) -> set[str]:
    """Territory Ids the mirrored ObjectTerritory2Association gives an account (live rows only),
    optionally only those made by rules (`Territory2AssociationRules`) or by hand."""
    if cause is not None and cause not in ASSOCIATION_CAUSES:
        raise ValueError(f"unknown association cause {cause!r}; known: {', '.join(ASSOCIATION_CAUSES)}")
    t = _clause("ObjectTerritory2Association", schema, prefix, with_isdeleted=True)
    query = select(t.c.territory2id).where(t.c.objectid == account_sfid, *_live(t))
    if cause is not None:
        query = query.where(t.c.associationcause == cause)
    return set(connection.scalars(query))
