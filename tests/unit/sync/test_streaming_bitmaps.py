"""Pub/Sub field bitmaps: the connector's decoder against hand-made bitmaps of the documented form,
and against every field set the emulator's encoder makes for a real object (compound fields too)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.emulator.cdc import ObjectEventSchema
from connector.emulator.orgdef import load_org
from connector.sync.streaming import EventDecoder, decode_bitmap

NAMES = ["ChangeEventHeader", "Name", "Amount", "BillingAddress", "StageName"]
NESTED = {3: ["BillingStreet", "BillingCity", "BillingState"]}


@pytest.mark.parametrize("bitmap, expected", [
    ([], []),
    (["0x2"], ["Name"]),
    (["0x16"], ["Name", "Amount", "StageName"]),          # bits 1, 2, 4
    (["0x8", "3-0x5"], ["BillingAddress", "BillingStreet", "BillingState"]),
    (["0x0"], []),
])
def test_documented_form(bitmap, expected):
    assert decode_bitmap(bitmap, NAMES, NESTED) == expected


def test_a_bit_past_the_schema_is_ignored_not_misread():
    assert decode_bitmap(["0x100"], NAMES, NESTED) == []


ACCOUNT = load_org("cosell_demo").get_object("Account")
SCHEMA = ObjectEventSchema(ACCOUNT)


class _Stub:
    def GetSchema(self, request, metadata=None):  # noqa: N802 - the generated stub's name
        return type("Info", (), {"schema_json": SCHEMA.schema_json})()


@settings(max_examples=60, deadline=None)
@given(st.sets(st.sampled_from(sorted(SCHEMA.positions))))
def test_every_field_set_of_a_real_object_round_trips(fields):
    _, names, nested = EventDecoder(_Stub(), lambda: ())._schema(SCHEMA.schema_id)
    decoded = set(decode_bitmap(SCHEMA.bitmap(fields), names, nested))
    compounds = {SCHEMA.compound_of[f] for f in fields if f in SCHEMA.compound_of}
    assert decoded == set(fields) | compounds
    assert json.loads(SCHEMA.schema_json)["fields"][0]["name"] == "ChangeEventHeader"
