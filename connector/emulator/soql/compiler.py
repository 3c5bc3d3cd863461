"""Binds a parsed SOQL query to a schema and compiles it into closures: the WHERE predicate,
ORDER BY keys and REST/Bulk projections over wire-format record dicts. All resolution, literal
coercion and regex building happen once here, leaving a few dict lookups per record."""

from __future__ import annotations

import datetime as dt
import operator
import re
from decimal import Decimal
from typing import Any, Callable, Iterable

from . import nodes
from .dates import date_range
from .errors import SoqlError, error_at
from .parser import decode_string, parse
from .schema import FieldInfo, ObjectInfo, SchemaLookup

Record = dict[str, Any]
Fetch = Callable[[str, str], "Record | None"]
Predicate = Callable[[Record, Fetch], bool]
Getter = Callable[[Record, Fetch], Any]

TEXT_TYPES = frozenset({"string", "textarea", "picklist", "email", "phone", "url", "combobox", "encryptedstring"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"int", "double", "currency", "percent", "long"})
COMPOUND_TYPES = frozenset({"address", "location"})
_UNFILTERABLE = COMPOUND_TYPES | {"base64"}
MAX_OFFSET = 2000
# describe's groupable=false types (Object reference, field properties: "Group")
_UNGROUPABLE = COMPOUND_TYPES | {"base64", "multipicklist", "double", "currency", "percent", "datetime", "textarea"}
_UNSORTABLE = COMPOUND_TYPES | {"base64", "multipicklist"}

# The SOAP type Salesforce names in "value of filter criterion" errors.
_SOAP_TYPE = {"id": "id", "reference": "id", "int": "int", "long": "long", "double": "double",
              "currency": "double", "percent": "double", "boolean": "boolean", "date": "date",
              "datetime": "dateTime", "time": "time"}

# Address component suffixes; longest first so "StateCode" is not read as "State".
_ADDRESS_PARTS = (("GeocodeAccuracy", "geocodeAccuracy"), ("CountryCode", "countryCode"),
                  ("StateCode", "stateCode"), ("PostalCode", "postalCode"), ("Longitude", "longitude"),
                  ("Latitude", "latitude"), ("Country", "country"), ("Street", "street"),
                  ("State", "state"), ("City", "city"))
_ADDRESS_KEYS = ("city", "country", "geocodeAccuracy", "latitude", "longitude", "postalCode", "state", "street")

_ORDERING = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_INVALID_FIELD_HINT = ("If you are attempting to use a custom field, be sure to append the '__c' after the custom "
                       "field name. Please reference your WSDL or the describe call for the appropriate names.")
_INVALID_REL_HINT = ("If you are attempting to use a custom relationship, be sure to append the '__r' after the "
                     "custom relationship name. Please reference your WSDL or the describe call for the "
                     "appropriate names.")
_INVALID_TYPE_HINT = ("If you are attempting to use a custom object, be sure to append the '__c' after the entity "
                      "name. Please reference your WSDL or the describe call for the appropriate names.")


def _category(field_type: str) -> str:
    if field_type in TEXT_TYPES:
        return "text"
    if field_type in ID_TYPES:
        return "id"
    if field_type in NUMBER_TYPES:
        return "number"
    if field_type in ("boolean", "date", "datetime", "time", "multipicklist"):
        return field_type
    return "other"


def _wire_datetime(moment: dt.datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{moment.microsecond // 1000:03d}+0000"


def _wire_day_start(day: dt.date) -> str:
    return f"{day.isoformat()}T00:00:00.000+0000"


class _Range:
    """A relative date literal, as wire-format bounds [lo, hi) matching the field's storage."""

    __slots__ = ("lo", "hi")

    def __init__(self, lo: str, hi: str) -> None:
        self.lo, self.hi = lo, hi


class _Hop:
    """One step up a relationship path: the child's reference field and the possible parent objects."""

    __slots__ = ("field_name", "relationship", "targets", "_by_prefix")

    def __init__(self, field_name: str, relationship: str, targets: tuple[str, ...]) -> None:
        self.field_name = field_name
        self.relationship = relationship
        self.targets = targets
        # Polymorphic lookups learn which object a key prefix belongs to, so each later
        # record costs a single fetch instead of one per candidate.
        self._by_prefix: dict[str, str] = {}

    def follow(self, record_id: str, fetch: Fetch) -> tuple[str, Record] | None:
        if len(self.targets) == 1:
            parent = fetch(self.targets[0], record_id)
            return None if parent is None else (self.targets[0], parent)
        known = self._by_prefix.get(record_id[:3])
        if known is not None:
            parent = fetch(known, record_id)
            if parent is not None:
                return known, parent
        for target in self.targets:
            parent = fetch(target, record_id)
            if parent is not None:
                self._by_prefix[record_id[:3]] = target
                return target, parent
        return None


class _Resolved:
    """A field path bound to the schema: the hops to walk and the final field."""

    __slots__ = ("hops", "field", "owner", "column", "path")

    def __init__(self, hops: tuple[_Hop, ...], field: FieldInfo, owner: ObjectInfo, path: nodes.FieldPath) -> None:
        self.hops = hops
        self.field = field
        self.owner = owner
        self.path = path
        self.column = ".".join([hop.relationship for hop in hops] + [field.name])

    def getter(self) -> Getter:
        """Value of the final field for a base record; None when any link in the path is null."""
        name = self.field.name
        hops = self.hops
        if not hops:
            return lambda rec, fetch: rec.get(name)
        if len(hops) == 1:
            hop = hops[0]
            ref_name = hop.field_name

            def get_parent_field(rec: Record, fetch: Fetch) -> Any:
                ref = rec.get(ref_name)
                if ref is None:
                    return None
                found = hop.follow(ref, fetch)
                return None if found is None else found[1].get(name)
            return get_parent_field

        def get_path(rec: Record, fetch: Fetch) -> Any:
            for hop in hops:
                ref = rec.get(hop.field_name)
                if ref is None:
                    return None
                found = hop.follow(ref, fetch)
                if found is None:
                    return None
                rec = found[1]
            return rec.get(name)
        return get_path


def _always(rec: Record, fetch: Fetch) -> bool:
    return True


def _field_key(name: str, normalise: Callable[[Any], Any]) -> Callable[[Record], Any]:
    return lambda rec: normalise(rec[name])


def _path_key(getter: Getter, normalise: Callable[[Any], Any], fetch: Fetch) -> Callable[[Record], Any]:
    return lambda rec: normalise(getter(rec, fetch))


# (field name when on the base object, getter, normaliser or None, descending, nulls first)
_OrderKey = tuple["str | None", Getter, "Callable[[Any], Any] | None", bool, bool]


class CompiledQuery:
    """A query bound to a schema and a moment; `matches` is the compiled WHERE predicate itself."""

    object_name: str
    is_count: bool
    limit: int | None
    offset: int | None
    columns: list[str]
    fields_used: set[str]
    id_filter: frozenset[str] | None
    matches: Predicate

    def __init__(self, *, object_name: str, is_count: bool, limit: int | None, offset: int | None,
                 columns: list[str], fields_used: set[str], id_filter: frozenset[str] | None,
                 matches: Predicate, order_keys: list[_OrderKey],
                 projector: Callable[[Record, Fetch, str], dict], row_getters: list[Callable[[Record, Fetch], Any]],
                 aggregate: Callable[[list[Record], Fetch], list[dict]] | None = None) -> None:
        self.object_name = object_name
        self.is_count = is_count
        self.limit = limit
        self.offset = offset
        self.columns = columns
        self.fields_used = fields_used
        self.id_filter = id_filter
        # An instance attribute rather than a method: callers loop over a million records,
        # and skipping the bound-method indirection is measurable.
        self.matches = matches
        self._order_keys = order_keys
        self._projector = projector
        self._row_getters = row_getters
        # An aggregate query turns the matched (and ordered) records into AggregateResult rows;
        # LIMIT and OFFSET then count rows, not records.
        self._aggregate = aggregate

    def order(self, records: Iterable[Record], fetch: Fetch) -> list[Record]:
        """ORDER BY (stable, SOQL null placement, case-insensitive text), then OFFSET and LIMIT."""
        rows = list(records)
        # Sorting by the last key first and relying on stability yields the multi-key order
        # and lets each key have its own direction. Nulls are set aside rather than encoded in
        # the sort key: building a million key tuples costs more than the sort itself.
        for name, getter, normalise, descending, nulls_first in reversed(self._order_keys):
            if name is not None:
                nulls = [rec for rec in rows if rec.get(name) is None]
                ordered = [rec for rec in rows if rec.get(name) is not None]
                key = operator.itemgetter(name) if normalise is None else _field_key(name, normalise)
            else:
                nulls = [rec for rec in rows if getter(rec, fetch) is None]
                ordered = [rec for rec in rows if getter(rec, fetch) is not None]
                key = _path_key(getter, normalise or _identity, fetch)
            ordered.sort(key=key, reverse=descending)
            rows = nulls + ordered if nulls_first else ordered + nulls
        if self._aggregate is not None:
            rows = self._aggregate(rows, fetch)
        if self.offset:
            rows = rows[self.offset:]
        if self.limit is not None:
            rows = rows[:self.limit]
        return rows

    def project(self, record: Record, fetch: Fetch, api_version: str) -> dict:
        """The record as the REST query resource returns it (an aggregate row is one already)."""
        if self._aggregate is not None:
            return record
        return self._projector(record, fetch, api_version)

    def row(self, record: Record, fetch: Fetch) -> list:
        """Values in `columns` order, parent paths resolved, for a Bulk CSV line."""
        return [get(record, fetch) for get in self._row_getters]


def compile_query(text: str, schema: SchemaLookup, now: dt.datetime, *, bulk: bool = False) -> CompiledQuery:
    """Parse `text` and bind it to `schema`; date literals are relative to `now` (taken as UTC)."""
    return _Compiler(parse(text), schema, now, bulk).compile()


class _Compiler:
    def __init__(self, query: nodes.Query, schema: SchemaLookup, now: dt.datetime, bulk: bool) -> None:
        self.query = query
        self.text = query.text
        self.schema = schema
        if now.tzinfo is not None:
            now = now.astimezone(dt.timezone.utc)
        self.today = now.date()
        self.bulk = bulk
        self.fields_used: set[str] = set()

    # ----------------------------------------------------------------- errors

    def _error(self, code: str, pos: nodes.Pos, detail: str) -> SoqlError:
        return error_at(code, self.text, pos, detail)

    def _criterion_error(self, field: FieldInfo, literal: nodes.Literal) -> SoqlError:
        soap = _SOAP_TYPE.get(field.type, "string")
        quoted = soap in ("string", "id")
        return self._error("INVALID_FIELD", literal.pos,
                           f"value of filter criterion for field '{field.name}' must be of type {soap} and should "
                           f"{'' if quoted else 'not '}be enclosed in quotes")

    def _operator_error(self, pos: nodes.Pos, detail: str) -> SoqlError:
        return self._error("INVALID_QUERY_FILTER_OPERATOR", pos, detail)

    # ------------------------------------------------------------- resolution

    def compile(self) -> CompiledQuery:
        q = self.query
        base = self.schema.get_object(q.sobject.text)
        if base is None:
            raise self._error("INVALID_TYPE", q.sobject.pos, f"sObject type '{q.sobject.text}' is not supported. "
                              + _INVALID_TYPE_HINT)
        self.base = base

        selected: list[_Resolved] = []
        seen: set[str] = set()
        for path in q.fields:
            resolved = self._resolve(path)
            key = resolved.column.lower()
            if key in seen:
                raise self._error("DUPLICATE_FIELD", path.pos, f"duplicate field selected: {resolved.field.name}")
            seen.add(key)
            selected.append(resolved)
        if self.bulk:
            if any(r.field.type in COMPOUND_TYPES for r in selected):
                raise SoqlError("INVALID_FIELD", "Selecting compound data not supported in Bulk Query")
            if q.offset is not None:
                raise self._error("MALFORMED_QUERY", q.offset_pos or q.sobject.pos,
                                  "OFFSET is not supported in Bulk Query")
            if q.is_count or q.aggregates:
                raise SoqlError("MALFORMED_QUERY", "Aggregate Queries not supported in Bulk Query")

        if q.offset is not None and q.offset > MAX_OFFSET:
            # SOQL reference, OFFSET: "Requesting an offset greater than 2,000 results in a
            # NUMBER_OUTSIDE_VALID_RANGE error."
            raise self._error("NUMBER_OUTSIDE_VALID_RANGE", q.offset_pos or q.sobject.pos,
                              f"Maximum SOQL offset allowed is {MAX_OFFSET}")
        matches = _always if q.where is None else self._condition(q.where)[0]
        order_keys = [self._order_key(item) for item in q.order_by]
        aggregate, columns = None, [r.column for r in selected]
        if q.aggregates:
            aggregate, columns = self._aggregator(q, selected)
        return CompiledQuery(
            object_name=base.name, is_count=q.is_count, limit=q.limit, offset=q.offset,
            columns=columns, fields_used=self.fields_used,
            id_filter=self._id_filter(q.where), matches=matches, order_keys=order_keys,
            projector=self._projector(selected), row_getters=[self._value_getter(r) for r in selected],
            aggregate=aggregate)

    # ------------------------------------------------------------ aggregates

    def _aggregator(self, q: nodes.Query, selected: list[_Resolved]
                    ) -> tuple[Callable[[list[Record], Fetch], list[dict]], list[str]]:
        """GROUP BY and the aggregate functions: one AggregateResult row per group (one in all without
        GROUP BY), each value under its alias, unaliased functions named expr0, expr1, ... in order."""
        groups = [self._resolve(path) for path in q.group_by]
        for g in groups:
            if g.field.type in _UNGROUPABLE or getattr(g.field, "groupable", True) is False:
                raise self._error("INVALID_FIELD", g.path.pos,
                                  f"field '{g.field.name}' can not be grouped in a query call")
        grouped = {g.column.lower() for g in groups}
        for r in selected:
            if r.column.lower() not in grouped:
                raise self._error("MALFORMED_QUERY", r.path.pos, f"Field must be grouped or aggregated: {r.field.name}")
        for item in q.order_by:
            if self._resolve(item.field).column.lower() not in grouped:
                raise self._error("MALFORMED_QUERY", item.field.pos,
                                  f"Ordered field must be grouped or aggregated: {item.field.dotted}")
        outputs: list[tuple[str, Callable[[list[Record], Fetch], Any]]] = []
        by_column = {r.column.lower(): r for r in selected}
        expr = 0
        for item in q.aggregates:
            if isinstance(item, nodes.FieldPath):
                resolved = by_column[self._resolve(item).column.lower()]
                outputs.append((resolved.field.name, _first_of(resolved.getter())))
                continue
            resolved = self._resolve(item.field)
            if item.function in ("SUM", "AVG") and _category(resolved.field.type) != "number":
                raise self._error("INVALID_FIELD", item.pos,
                                  f"field {resolved.field.name} does not support aggregate operator {item.function}")
            name = item.alias
            if name is None:
                name, expr = f"expr{expr}", expr + 1
            if name.lower() in {n.lower() for n, _ in outputs}:
                raise self._error("MALFORMED_QUERY", item.pos, f"duplicate alias: {name}")
            outputs.append((name, _AGGREGATES[item.function](resolved.getter())))
        keys = [g.getter() for g in groups]

        def aggregate(records: list[Record], fetch: Fetch) -> list[dict]:
            buckets: dict[tuple, list[Record]] = {}
            for rec in records:  # first appearance keeps ORDER BY's order of the groups
                buckets.setdefault(tuple(k(rec, fetch) for k in keys), []).append(rec)
            if not keys and not buckets:
                buckets[()] = []  # an aggregate over nothing is still one row
            return [{"attributes": {"type": "AggregateResult"}, **{n: f(rows, fetch) for n, f in outputs}}
                    for rows in buckets.values()]

        return aggregate, [n for n, _ in outputs]

    def _resolve(self, path: nodes.FieldPath) -> _Resolved:
        candidates: list[ObjectInfo] = [self.base]
        hops: list[_Hop] = []
        for part in path.parts[:-1]:
            ref = next((r for r in (o.relationship(part.text) for o in candidates) if r is not None), None)
            targets = [] if ref is None else [t for t in map(self.schema.get_object, ref.reference_to) if t]
            if ref is None or not targets or not ref.relationship_name:
                raise self._error("INVALID_FIELD", path.pos,
                                  f"Didn't understand relationship '{part.text}' in field path. " + _INVALID_REL_HINT)
            hops.append(_Hop(ref.name, ref.relationship_name, tuple(t.name for t in targets)))
            candidates = targets
        last = path.parts[-1]
        for owner in candidates:
            field = owner.field(last.text)
            if field is not None:
                break
        else:
            raise self._error("INVALID_FIELD", path.pos, f"No such column '{last.text}' on entity "
                              f"'{candidates[0].name}'. " + _INVALID_FIELD_HINT)
        if hops:
            self.fields_used.add(hops[0].field_name)
        else:
            self.fields_used.add(field.name)
            if field.type in COMPOUND_TYPES:
                self.fields_used.update(c.name for c in self._components(owner, field))
        return _Resolved(tuple(hops), field, owner, path)

    @staticmethod
    def _components(owner: ObjectInfo, compound: FieldInfo) -> list[FieldInfo]:
        return [f for f in owner.fields if f.compound_field_name == compound.name]

    # ------------------------------------------------------------- projection

    def _value_getter(self, resolved: _Resolved) -> Getter:
        """Getter of the projected value: plain fields as stored, compound fields assembled."""
        field = resolved.field
        if field.type not in COMPOUND_TYPES:
            return resolved.getter()
        parts: list[tuple[str, str]] = []
        for comp in self._components(resolved.owner, field):
            stem = comp.name.removesuffix("__s")
            for suffix, key in _ADDRESS_PARTS:
                if stem.endswith(suffix):
                    parts.append((key, comp.name))
                    break
        if field.type == "location":
            parts = [(k, n) for k, n in parts if k in ("latitude", "longitude")]
            template = dict.fromkeys(("latitude", "longitude"))
        else:
            # The API lists address keys alphabetically, including stateCode/countryCode when
            # the org has state and country picklists.
            template = dict.fromkeys(sorted(set(_ADDRESS_KEYS) | {key for key, _ in parts}))
        component_getters = [
            (key, _Resolved(resolved.hops, _Component(name), resolved.owner, resolved.path).getter())
            for key, name in parts]

        def get_compound(rec: Record, fetch: Fetch) -> dict | None:
            out = dict(template)
            for key, get in component_getters:
                out[key] = get(rec, fetch)
            # Salesforce returns null rather than an object of nulls for an empty address.
            return out if any(v is not None for v in out.values()) else None
        return get_compound

    def _projector(self, selected: list[_Resolved]) -> Callable[[Record, Fetch, str], dict]:
        # A tree keyed by canonical relationship name, in first-appearance order, so that
        # Account.Name and Account.Industry share one nested "Account" object.
        root: dict[str, Any] = {}
        for resolved in selected:
            level = root
            for hop in resolved.hops:
                entry = level.get(hop.relationship)
                if entry is None:
                    entry = level[hop.relationship] = (hop, {})
                level = entry[1]
            leaf = _Resolved((), resolved.field, resolved.owner, resolved.path)
            level[resolved.field.name] = self._value_getter(leaf)
        build = _build_level(root)
        object_name = self.base.name
        return lambda rec, fetch, api_version: build(rec, fetch, api_version, object_name)

    # ---------------------------------------------------------------- ORDER BY

    def _order_key(self, item: nodes.OrderItem) -> _OrderKey:
        resolved = self._resolve(item.field)
        if resolved.field.type in _UNSORTABLE or getattr(resolved.field, "sortable", True) is False:
            raise self._error("INVALID_FIELD", item.field.pos,
                              f"field '{resolved.field.name}' can not be sorted in a query call")
        category = _category(resolved.field.type)
        normalise: Callable[[Any], Any] | None = None
        if category == "text":
            normalise = str.lower
        elif category == "boolean":
            normalise = bool
        # SOQL puts nulls first when ascending and last when descending unless told otherwise.
        nulls_first = not item.descending if item.nulls_last is None else not item.nulls_last
        name = None if resolved.hops else resolved.field.name
        return name, resolved.getter(), normalise, item.descending, nulls_first

    # ------------------------------------------------------------------ WHERE

    def _id_filter(self, where: nodes.Condition | None) -> frozenset[str] | None:
        candidates = where.items if isinstance(where, nodes.And) else (where,)
        for cond in candidates:
            if not isinstance(cond, nodes.Comparison) or cond.op not in ("=", "IN") or len(cond.field.parts) != 1:
                continue
            field = self.base.field(cond.field.parts[0].text)
            if field is None or field.type != "id":
                continue
            values = cond.value if isinstance(cond.value, tuple) else (cond.value,)
            return frozenset(v.value for v in values if v.kind == "string")
        return None

    def _condition(self, cond: nodes.Condition) -> tuple[Predicate, tuple | None]:
        """The predicate plus, for a simple-field ordering comparison, (name, op, operand) so And can fuse ranges."""
        if isinstance(cond, nodes.Comparison):
            return self._comparison(cond)
        if isinstance(cond, nodes.Not):
            inner = self._condition(cond.item)[0]
            return (lambda rec, fetch: not inner(rec, fetch)), None
        compiled = [self._condition(item) for item in cond.items]
        if isinstance(cond, nodes.And):
            preds = _fuse_ranges(compiled)
            return _all_of(preds), None
        return _any_of([p for p, _ in compiled]), None

    def _comparison(self, cmp: nodes.Comparison) -> tuple[Predicate, tuple | None]:
        resolved = self._resolve(cmp.field)
        field = resolved.field
        if field.type in _UNFILTERABLE or getattr(field, "filterable", True) is False:
            raise self._error("INVALID_FIELD", cmp.field.pos, f"field '{field.name}' can not be filtered in query call")
        category = _category(field.type)
        op = cmp.op
        if op == "LIKE" and category not in ("text", "other"):
            raise self._operator_error(cmp.pos, f"invalid operator on {field.type} field")
        if op in ("INCLUDES", "EXCLUDES") and category != "multipicklist":
            raise self._operator_error(cmp.pos, "includes or excludes operator only valid on multipicklist field")
        if op in _ORDERING and category in ("boolean", "multipicklist"):
            raise self._operator_error(cmp.pos, f"invalid operator on {field.type} field")
        if isinstance(cmp.value, tuple):
            operands = [self._operand(field, category, lit, op) for lit in cmp.value]
            test = self._list_test(category, op, operands)
        else:
            operand = self._operand(field, category, cmp.value, op)
            if not resolved.hops:
                fast = _fast_leaf(field.name, category, op, operand)
                if fast is not None:
                    plain = category in ("number", "date", "datetime") and not isinstance(operand, _Range)
                    fusable = (field.name, op, operand) if plain and op in _ORDERING and operand is not None else None
                    return fast, fusable
            test = self._scalar_test(category, op, operand, cmp.value)
        if not resolved.hops:
            name = field.name
            return (lambda rec, fetch: test(rec.get(name))), None
        get = resolved.getter()
        return (lambda rec, fetch: test(get(rec, fetch))), None

    def _operand(self, field: FieldInfo, category: str, lit: nodes.Literal, op: str) -> Any:
        """The literal converted to the stored representation it is compared against."""
        kind = lit.kind
        if kind == "null":
            return False if category == "boolean" else None
        if category == "text" or category == "other":
            if kind != "string":
                raise self._criterion_error(field, lit)
            if op == "LIKE":
                return _like_matcher(decode_string(self.text, lit.text, lit.pos, like=True))
            return lit.value.lower() if category == "text" else lit.value
        if category == "id":
            if kind != "string":
                raise self._criterion_error(field, lit)
            value = lit.value
            if op in _ORDERING:
                return value
            if len(value) not in (15, 18) or not value.isalnum() or not value.isascii():
                raise self._operator_error(lit.pos, f"invalid ID field: {value}")
            return value[:15]
        if category == "multipicklist":
            if kind != "string":
                raise self._criterion_error(field, lit)
            return _split_multi(lit.value)
        if category == "number":
            if kind != "number":
                raise self._criterion_error(field, lit)
            return lit.value
        if category == "boolean":
            if kind != "boolean":
                raise self._criterion_error(field, lit)
            return lit.value
        if category == "date":
            if kind == "date":
                return lit.value.isoformat()
            if kind == "date_literal":
                lo, hi = date_range(*lit.value, self.today)
                return _Range(lo.isoformat(), hi.isoformat())
            raise self._criterion_error(field, lit)
        if category == "datetime":
            if kind == "datetime":
                return _wire_datetime(lit.value)
            if kind == "date_literal":
                lo, hi = date_range(*lit.value, self.today)
                return _Range(_wire_day_start(lo), _wire_day_start(hi))
            raise self._criterion_error(field, lit)
        # time fields: only null comparisons are supported
        raise self._criterion_error(field, lit)

    def _scalar_test(self, category: str, op: str, x: Any, lit: nodes.Literal) -> Callable[[Any], bool]:
        if category == "boolean":
            if op == "=":
                return lambda v: bool(v) is x
            return lambda v: bool(v) is not x
        if x is None:
            if op == "=":
                return lambda v: v is None
            if op == "!=":
                return lambda v: v is not None
            return lambda v: False
        if op == "LIKE":
            return lambda v: v is not None and x(v) is not None
        if isinstance(x, _Range):
            return _range_test(op, x.lo, x.hi)
        norm = _normaliser(category)
        if op == "=":
            return lambda v: v is not None and norm(v) == x
        if op == "!=":
            return lambda v: v is None or norm(v) != x
        compare = _ORDERING[op]
        if category == "id":
            # Ordering on Ids compares the stored strings as they are.
            return lambda v: v is not None and compare(v, x)
        return lambda v: v is not None and compare(norm(v), x)

    def _list_test(self, category: str, op: str, operands: list[Any]) -> Callable[[Any], bool]:
        if op in ("INCLUDES", "EXCLUDES"):
            groups = [g for g in operands if g is not None]

            def includes(v: Any) -> bool:
                if v is None:
                    return False
                present = _split_multi(v)
                return any(g <= present for g in groups)
            return includes if op == "INCLUDES" else (lambda v: not includes(v))
        if category == "boolean":
            flags = frozenset(operands)
            member = (lambda v: bool(v) in flags)
        else:
            has_null = any(x is None for x in operands)
            ranges = [(x.lo, x.hi) for x in operands if isinstance(x, _Range)]
            values = frozenset(x for x in operands if x is not None and not isinstance(x, _Range))
            norm = _normaliser(category)

            def member(v: Any) -> bool:
                if v is None:
                    return has_null
                return norm(v) in values or any(lo <= v < hi for lo, hi in ranges)
        if op == "IN":
            return member
        return lambda v: not member(v)


class _Component:
    """Stand-in FieldInfo for an address/location component, only its name matters."""

    __slots__ = ("name", "type", "reference_to", "relationship_name", "compound_field_name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.type = "string"
        self.reference_to: list[str] = []
        self.relationship_name = None
        self.compound_field_name = None


def _identity(value: Any) -> Any:
    return value


def _normaliser(category: str) -> Callable[[Any], Any]:
    if category == "text":
        return str.lower
    if category == "id":
        return lambda v: v[:15]
    if category == "multipicklist":
        return _split_multi
    return _identity


def _split_multi(value: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in value.split(";") if part.strip())


def _like_matcher(pattern: str) -> Callable[[str], Any]:
    """fullmatch of a LIKE pattern, where the pattern still carries \\% and \\_ escapes."""
    out: list[str] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern) and pattern[i + 1] in "%_":
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL).fullmatch


def _range_test(op: str, lo: str, hi: str) -> Callable[[Any], bool]:
    if op == "=":
        return lambda v: v is not None and lo <= v < hi
    if op == "!=":
        return lambda v: v is None or not lo <= v < hi
    if op == "<":
        return lambda v: v is not None and v < lo
    if op == "<=":
        return lambda v: v is not None and v < hi
    if op == ">":
        return lambda v: v is not None and v >= hi
    return lambda v: v is not None and v >= lo


def _fast_leaf(name: str, category: str, op: str, x: Any) -> Predicate | None:
    """Hand-specialised closures for the hot cases: one dict lookup and one comparison per record."""
    if category == "boolean" or op not in ("=", "!=", "<", "<=", ">", ">="):
        return None
    if x is None:
        if op == "=":
            return lambda rec, fetch: rec.get(name) is None
        if op == "!=":
            return lambda rec, fetch: rec.get(name) is not None
        return lambda rec, fetch: False
    if isinstance(x, _Range):
        lo, hi = x.lo, x.hi
        if op == "=":
            def in_range(rec: Record, fetch: Fetch) -> bool:
                v = rec.get(name)
                return v is not None and lo <= v < hi
            return in_range
        test = _range_test(op, lo, hi)
        return lambda rec, fetch: test(rec.get(name))
    if category == "text":
        if op == "=":
            def text_eq(rec: Record, fetch: Fetch) -> bool:
                v = rec.get(name)
                return v is not None and v.lower() == x
            return text_eq
        return None
    if category == "id" and op == "=":
        def id_eq(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and v[:15] == x
        return id_eq
    if category not in ("number", "date", "datetime"):
        return None
    if op == "=":
        def eq(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and v == x
        return eq
    if op == "!=":
        def ne(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is None or v != x
        return ne
    if op == "<":
        def lt(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and v < x
        return lt
    if op == "<=":
        def le(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and v <= x
        return le
    if op == ">":
        def gt(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and v > x
        return gt

    def ge(rec: Record, fetch: Fetch) -> bool:
        v = rec.get(name)
        return v is not None and v >= x
    return ge


def _fuse_ranges(compiled: list[tuple[Predicate, tuple | None]]) -> list[Predicate]:
    """Turn `F >= a AND F < b` on one plain field into a single chained comparison."""
    by_field: dict[str, list[tuple]] = {}
    for _, fusable in compiled:
        if fusable is not None:
            by_field.setdefault(fusable[0], []).append(fusable)
    fused: dict[str, Predicate] = {}
    for name, bounds in by_field.items():
        lower = [b for b in bounds if b[1] in (">", ">=")]
        upper = [b for b in bounds if b[1] in ("<", "<=")]
        if len(lower) == 1 and len(upper) == 1 and len(bounds) == 2:
            fused[name] = _between(name, lower[0][1], lower[0][2], upper[0][1], upper[0][2])
    out: list[Predicate] = []
    for pred, fusable in compiled:
        if fusable is None or fusable[0] not in fused:
            out.append(pred)
        elif fused[fusable[0]] not in out:
            out.append(fused[fusable[0]])
    return out


def _between(name: str, lo_op: str, lo: Any, hi_op: str, hi: Any) -> Predicate:
    if lo_op == ">=" and hi_op == "<":
        def ge_lt(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and lo <= v < hi
        return ge_lt
    if lo_op == ">=":
        def ge_le(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and lo <= v <= hi
        return ge_le
    if hi_op == "<":
        def gt_lt(rec: Record, fetch: Fetch) -> bool:
            v = rec.get(name)
            return v is not None and lo < v < hi
        return gt_lt

    def gt_le(rec: Record, fetch: Fetch) -> bool:
        v = rec.get(name)
        return v is not None and lo < v <= hi
    return gt_le


def _all_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    if len(preds) == 2:
        a, b = preds
        return lambda rec, fetch: a(rec, fetch) and b(rec, fetch)

    def all_of(rec: Record, fetch: Fetch) -> bool:
        for pred in preds:
            if not pred(rec, fetch):
                return False
        return True
    return all_of


def _any_of(preds: list[Predicate]) -> Predicate:
    if len(preds) == 2:
        a, b = preds
        return lambda rec, fetch: a(rec, fetch) or b(rec, fetch)

    def any_of(rec: Record, fetch: Fetch) -> bool:
        for pred in preds:
            if pred(rec, fetch):
                return True
        return False
    return any_of


def _build_level(level: dict[str, Any]) -> Callable[..., dict]:
    """The projector for one object level of the projection tree (recursing into parents)."""
    entries: list[tuple[str, Any, Any]] = []
    for key, entry in level.items():
        if isinstance(entry, tuple):
            hop, children = entry
            entries.append((key, hop, _build_level(children)))
        else:
            entries.append((key, None, entry))

    def build_record(rec: Record, fetch: Fetch, api_version: str, object_name: str) -> dict:
        out: dict[str, Any] = {"attributes": {
            "type": object_name,
            "url": f"/services/data/v{api_version}/sobjects/{object_name}/{rec.get('Id')}"}}
        for key, hop, build in entries:
            if hop is None:
                out[key] = build(rec, fetch)
                continue
            ref = rec.get(hop.field_name)
            found = None if ref is None else hop.follow(ref, fetch)
            out[key] = None if found is None else build(found[1], fetch, api_version, found[0])
        return out
    return build_record


def _values(get: Getter, rows: list[Record], fetch: Fetch) -> list[Any]:
    return [v for v in (get(rec, fetch) for rec in rows) if v is not None]


def _first_of(get: Getter) -> Callable[[list[Record], Fetch], Any]:
    return lambda rows, fetch: get(rows[0], fetch) if rows else None


def _sum(get: Getter) -> Callable[[list[Record], Fetch], Any]:
    def total(rows: list[Record], fetch: Fetch) -> Any:
        values = _values(get, rows, fetch)
        return sum(values[1:], values[0]) if values else None
    return total


def _avg(get: Getter) -> Callable[[list[Record], Fetch], Any]:
    def mean(rows: list[Record], fetch: Fetch) -> Any:
        values = [Decimal(v) if not isinstance(v, Decimal) else v for v in _values(get, rows, fetch)]
        return sum(values, Decimal(0)) / len(values) if values else None
    return mean


def _extreme(pick: Callable[..., Any]) -> Callable[[Getter], Callable[[list[Record], Fetch], Any]]:
    def make(get: Getter) -> Callable[[list[Record], Fetch], Any]:
        return lambda rows, fetch: pick(values) if (values := _values(get, rows, fetch)) else None
    return make


_AGGREGATES: dict[str, Callable[[Getter], Callable[[list[Record], Fetch], Any]]] = {
    "COUNT": lambda get: lambda rows, fetch: len(_values(get, rows, fetch)),
    "COUNT_DISTINCT": lambda get: lambda rows, fetch: len(set(_values(get, rows, fetch))),
    "SUM": _sum, "AVG": _avg, "MIN": _extreme(min), "MAX": _extreme(max),
}
