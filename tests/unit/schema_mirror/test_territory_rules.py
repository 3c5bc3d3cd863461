"""The local evaluator of territory assignment rules, without a database: BooleanFilter parsing,
each rule item operation, and agreement with the org emulator's own evaluator where both define
the same behaviour."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import assume, given, strategies as st

from connector.emulator.store import _rule_item_matches, evaluate_boolean_filter
from connector.schema_mirror.territory import (AssignmentRule, BooleanFilterError, Model, RuleItem, Territory,
                                               TerritoryModel, TerritoryRuleError, parse_boolean_filter)

D = Decimal


@pytest.mark.parametrize("expression, results, expected", [
    (None, {1: True, 2: True}, True),
    ("", {1: True, 2: False}, False),
    ("1 AND (2 OR 3)", {1: True, 2: False, 3: True}, True),
    ("1 AND (2 OR 3)", {1: False, 2: True, 3: True}, False),
    ("(1 OR 2) AND 3", {1: True, 2: False, 3: False}, False),
    ("1 OR 2 AND 3", {1: True, 2: False, 3: False}, True),       # AND binds tighter than OR
    ("1 OR 2 AND 3", {1: False, 2: True, 3: False}, False),
    ("NOT 1 AND 2", {1: False, 2: True}, True),                  # NOT binds tighter than AND
    ("NOT (1 AND 2)", {1: True, 2: True}, False),
    ("1 and not 2", {1: True, 2: False}, True),                  # keywords in any case
    ("((1))", {1: True}, True),
    ("1 OR 2 OR 3 OR 4", {1: False, 2: False, 3: False, 4: True}, True),
])
def test_boolean_filters(expression, results, expected):
    assert parse_boolean_filter(expression).evaluate(results) is expected


@pytest.mark.parametrize("expression, problem", [
    ("1 AND", "found the end"), ("(1 OR 2", "expected \\)"), ("1 2", "unexpected '2'"),
    ("1 XOR 2", "unknown word 'XOR'"), ("1 && 2", "unexpected character '&'"), (")", "found '\\)'"),
    ("1 OR 2)", "unexpected '\\)'"), ("AND 1", "found 'AND'"), ("__import__('os')", "unexpected character"),
])
def test_malformed_filters_are_refused_with_the_position(expression, problem):
    with pytest.raises(BooleanFilterError, match=problem):
        parse_boolean_filter(expression)


_LEAF = st.integers(1, 5).map(lambda n: (str(n), lambda r, n=n: r.get(n, False)))


def _extend(children):
    def negate(c):
        return (f"NOT {c[0]}", lambda r: not c[1](r))

    def join(op, a, b):
        fn = (lambda r: a[1](r) and b[1](r)) if op == "AND" else (lambda r: a[1](r) or b[1](r))
        return (f"({a[0]} {op} {b[0]})", fn)
    return st.one_of(children.map(negate),
                     st.tuples(st.sampled_from(["AND", "OR"]), children, children).map(lambda t: join(*t)))


@given(tree=st.recursive(_LEAF, _extend, max_leaves=8),
       values=st.lists(st.booleans(), min_size=5, max_size=5))
def test_filters_evaluate_as_their_tree_and_as_the_org_does(tree, values):
    text, truth = tree
    results = dict(enumerate(values, start=1))
    assert parse_boolean_filter(text).evaluate(results) is truth(results)
    assert evaluate_boolean_filter(text, results) is truth(results)


def _item(operation, value, field="Account.BillingCountry", n=1):
    return RuleItem(n, field, operation, value)


@pytest.mark.parametrize("operation, value, account, expected", [
    ("equals", "United Kingdom", {"billingcountry": "united KINGDOM"}, True),
    ("equals", "Brazil, Mexico", {"billingcountry": "Mexico"}, True),
    ("equals", "Brazil,Mexico", {"billingcountry": "Chile"}, False),
    ("equals", None, {"billingcountry": None}, True),            # empty value: the field is empty
    ("equals", "", {"billingcountry": "  "}, True),
    ("equals", None, {}, True),                                  # an absent field is empty
    ("equals", None, {"billingcountry": "France"}, False),
    ("notEqual", "France,Spain", {"billingcountry": "Italy"}, True),
    ("notEqual", "France,Spain", {"billingcountry": "spain"}, False),
    ("notEqual", "France", {"billingcountry": None}, True),
    ("contains", "king", {"billingcountry": "United Kingdom"}, True),
    ("contains", "xx,ted", {"billingcountry": "United States"}, True),
    ("notContain", "king", {"billingcountry": "United Kingdom"}, False),
    ("notContain", "king", {"billingcountry": None}, True),
    ("startsWith", "united", {"billingcountry": "United States"}, True),
    ("startsWith", "states", {"billingcountry": "United States"}, False),
    ("includes", "Cloud,SaaS", {"billingcountry": "SaaS;Hardware"}, True),
    ("includes", "cloud;saas", {"billingcountry": "SaaS;Hardware"}, False),   # a;b needs both
    ("includes", "hardware;saas", {"billingcountry": "SaaS;Hardware"}, True),
    ("excludes", "Cloud", {"billingcountry": "SaaS;Hardware"}, True),
    ("excludes", "saas", {"billingcountry": "SaaS;Hardware"}, False),
])
def test_text_operations(operation, value, account, expected):
    assert _item(operation, value).matches(account) is expected


@pytest.mark.parametrize("operation, value, actual, expected", [
    ("greaterOrEqual", "100000000", D("100000000"), True),
    ("greaterOrEqual", "100000000", D("99999999.99"), False),
    ("lessThan", "100000000", D("99999999"), True),
    ("lessThan", "100000000", None, False),                     # empty never compares
    ("greaterThan", "1e3", 1001, True),
    ("lessOrEqual", "10.50", 10.5, True),
    ("lessThan", "abc", D(5), False),                           # not a number: no match
    ("greaterThan", "9", "10", True),                           # numbers mirrored as text compare as numbers
    ("equals", "100000000", D("100000000.00"), True),           # equal numbers, whatever their scale
    ("equals", "100000000", 100000000.0, True),
    ("notEqual", "5", D("5.0"), False),
    ("greaterThan", "2025-01-01", dt.date(2025, 6, 1), True),
    ("lessThan", "2025-01-01", dt.date(2025, 6, 1), False),
    ("greaterThan", "m", "Zeta", True),                         # text compares case-insensitively
    ("greaterThan", "2025-01-01T00:00:00+00:00", dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc), True),
    ("greaterThan", "2025-01-01T00:00:00", dt.datetime(2025, 6, 1, tzinfo=dt.timezone.utc), False),
    ("lessThan", "not a date", dt.date(2025, 6, 1), False),
    ("greaterThan", "0", True, False),                           # booleans have no order
])
def test_comparisons(operation, value, actual, expected):
    assert _item(operation, value, "Account.AnnualRevenue").matches({"annualrevenue": actual}) is expected


_TEXT = st.text(alphabet="abAB ,;xy", max_size=6)


@given(operation=st.sampled_from(["equals", "notEqual", "contains", "notContain", "startsWith"]),
       value=st.one_of(st.none(), _TEXT), actual=st.one_of(st.none(), _TEXT))
def test_text_items_agree_with_the_org(operation, value, actual):
    assume(actual is None or actual == "" or actual.strip())  # the org reads "  " as text, the mirror as empty
    item = _item(operation, value)
    assert item.matches({"billingcountry": actual}) == _rule_item_matches(
        {"Field": item.field, "Operation": operation, "Value": value}, {"BillingCountry": actual})


@given(operation=st.sampled_from(["lessThan", "greaterThan", "lessOrEqual", "greaterOrEqual"]),
       value=st.integers(-10**12, 10**12), actual=st.one_of(st.none(), st.integers(-10**12, 10**12)))
def test_numeric_items_agree_with_the_org(operation, value, actual):
    item = _item(operation, str(value), "Account.AnnualRevenue")
    assert item.matches({"annualrevenue": None if actual is None else D(actual)}) == _rule_item_matches(
        {"Field": item.field, "Operation": operation, "Value": str(value)}, {"AnnualRevenue": actual})


def _model(*rules: AssignmentRule) -> TerritoryModel:
    territories = [Territory(f"T{n}", f"T{n}", f"T{n}", "M", None, None) for n in range(1, 4)]
    return TerritoryModel(Model("M", "Model", "Model", "Active"), territories, rules=rules)


def _rule(rule_id, items, territories, *, boolean_filter=None, active=True, object_type="Account"):
    return AssignmentRule(rule_id, rule_id, rule_id, active, boolean_filter, object_type, tuple(items),
                          frozenset(territories))


def test_a_model_unions_the_territories_of_matching_rules():
    model = _model(
        _rule("uk", [_item("equals", "United Kingdom")], {"T1"}),
        _rule("big", [_item("greaterOrEqual", "1000", "Account.AnnualRevenue")], {"T2", "T3"}),
        _rule("off", [_item("equals", "United Kingdom")], {"T3"}, active=False),
        _rule("lead", [_item("equals", "United Kingdom")], {"T3"}, object_type="Lead"),
        _rule("empty", [], {"T3"}),                               # no criteria: matches nothing
    )
    assert model.matching_territories({"BillingCountry": "United Kingdom", "AnnualRevenue": 5000}) == {"T1", "T2", "T3"}
    assert model.matching_territories({"billingcountry": "United Kingdom"}) == {"T1"}
    assert model.matching_territories({}) == set()
    assert TerritoryModel(None).matching_territories({"billingcountry": "United Kingdom"}) == set()


def test_rules_that_cannot_run_are_refused_when_the_model_loads():
    with pytest.raises(TerritoryRuleError, match="names item\\(s\\) \\[3\\]"):
        _model(_rule("r", [_item("equals", "x", n=1), _item("equals", "y", n=2)], {"T1"}, boolean_filter="1 OR 3"))
    with pytest.raises(TerritoryRuleError, match="r .*BooleanFilter '1 OR'"):
        _model(_rule("r", [_item("equals", "x")], {"T1"}, boolean_filter="1 OR"))
    with pytest.raises(TerritoryRuleError, match="unknown operation 'within'; known: equals, notEqual"):
        _model(_rule("r", [_item("within", "x")], {"T1"}))
    with pytest.raises(TerritoryRuleError, match="unknown operation 'within'"):
        _item("within", "x").matches({"billingcountry": "x"})
    # an inactive rule is not run, so its filter is not checked either
    _model(_rule("r", [_item("equals", "x")], {"T1"}, boolean_filter="1 OR", active=False))


@pytest.mark.parametrize("field, operation, value, actual, expected", [
    # a number field equals a value by number; JSON carries AnnualRevenue as 1000000.0
    ("AnnualRevenue", "equals", "1000000", 1000000.0, True),
    ("AnnualRevenue", "notEqual", "1000000", 1000000.0, False),
    ("AnnualRevenue", "equals", "250,1000000", 1000000.0, True),
    # multi-select picklists: `a;b` asks for both, a comma for either
    ("Industry", "includes", "hardware;saas", "SaaS;Hardware", True),
    ("Industry", "excludes", "hardware;saas", "SaaS;Hardware", False),
    ("Industry", "includes", "cloud;saas", "SaaS;Hardware", False),
    # text is ordered alphabetically, ignoring case
    ("BillingCountry", "greaterThan", "m", "Norway", True),
    ("BillingCountry", "lessThan", "M", "Norway", False),
])
def test_the_org_and_the_connector_give_one_answer_for_the_same_account(field, operation, value, actual,
                                                                          expected):
    """Cases where the org's rule run and the connector's evaluator once gave the same account two answers."""
    item = _item(operation, value, f"Account.{field}")
    local = item.matches({field.lower(): D(str(actual)) if isinstance(actual, float) else actual})
    org = _rule_item_matches({"Field": item.field, "Operation": operation, "Value": value}, {field: actual})
    assert (local, org) == (expected, expected)
