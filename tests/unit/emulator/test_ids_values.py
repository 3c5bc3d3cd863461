"""Id checksums and wire-format coercion, as a real org computes and refuses them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, strategies as st

from connector.emulator import ids
from connector.emulator.store import evaluate_boolean_filter
from connector.emulator.values import CoercionError, coerce, parse_wire_datetime, wire_datetime


def test_checksum_of_a_known_real_id():
    # 0015500001QdQWaAAN is a real Account Id recorded in CumulusCI's cassettes.
    assert ids.checksum("0015500001QdQWa") == "AAN"
    assert ids.to18("0015500001QdQWa") == "0015500001QdQWaAAN"


@given(st.integers(min_value=0, max_value=62 ** 9 - 2))
def test_every_generated_id_is_valid_and_unique_per_number(n):
    value = ids.make_id("006", n)
    assert len(value) == 18 and value.startswith("006") and ids.is_valid(value)
    assert ids.make_id("006", n + 1) != value


def test_an_id_with_a_wrong_checksum_is_invalid():
    assert not ids.is_valid("0015500001QdQWaAAA")
    assert not ids.is_valid("not-an-id")


def test_datetimes_are_written_in_utc_at_whole_seconds():
    assert wire_datetime(parse_wire_datetime("2026-03-01T10:00:00.987+01:00")) == "2026-03-01T09:00:00.000+0000"
    assert coerce("datetime", "2026-03-01T10:00:00Z", field="F", label="F") == "2026-03-01T10:00:00.000+0000"


@pytest.mark.parametrize("ftype, value, code", [
    ("string", "x" * 13, "STRING_TOO_LONG"),
    ("double", "abc", "JSON_PARSER_ERROR"),
    ("boolean", "maybe", "JSON_PARSER_ERROR"),
    ("date", "2026-02-30", "JSON_PARSER_ERROR"),
    ("email", "not an email", "INVALID_EMAIL_ADDRESS"),
])
def test_bad_values_are_refused_with_the_real_code(ftype, value, code):
    with pytest.raises(CoercionError) as exc:
        coerce(ftype, value, field="F", label="F", length=12)
    assert exc.value.code == code


def test_numbers_are_rounded_to_the_field_scale():
    assert coerce("currency", 1234.5678, field="A", label="A", scale=2) == Decimal("1234.57")
    assert coerce("currency", 1234.5678, field="A", label="A", scale=0) == Decimal("1235")
    assert coerce("currency", Decimal("1.005"), field="A", label="A", scale=2) == Decimal("1.01"), "half up"


def test_currency_is_held_exactly_to_18_digits():
    value = coerce("currency", Decimal("1234567890123456.78"), field="Amount", label="Amount", precision=18,
                   scale=2)
    assert value == Decimal("1234567890123456.78") and isinstance(value, Decimal)
    assert coerce("percent", "0.1", field="P", label="P", precision=5, scale=2) == Decimal("0.1")


@pytest.mark.parametrize("value", [12345678901234567890, Decimal("10000000000000000.00"), "-1e16"])
def test_integer_digits_beyond_precision_minus_scale_are_out_of_range(value):
    with pytest.raises(CoercionError) as exc:
        coerce("currency", value, field="Amount", label="Amount", precision=18, scale=2)
    assert exc.value.code == "NUMBER_OUTSIDE_VALID_RANGE" and exc.value.fields == ["Amount"]
    assert exc.value.message.startswith("Amount: value outside of valid range on numeric field: ")


@pytest.mark.parametrize("expression, results, expected", [
    (None, {1: True, 2: False}, False),
    ("1 OR 2", {1: False, 2: True}, True),
    ("1 AND (2 OR 3)", {1: True, 2: False, 3: True}, True),
    ("NOT 1 AND 2", {1: False, 2: True}, True),
    ("(1 OR 2) AND 3", {1: True, 2: True, 3: False}, False),
])
def test_territory_rule_boolean_filters(expression, results, expected):
    assert evaluate_boolean_filter(expression, results) is expected
