"""Mirroring real describe payloads on both databases: a polymorphic reference with 80 targets
(Event.WhatId) and a namespaced custom object whose 58-character field names share their first 37
characters. PostgreSQL keeps 63 bytes of an identifier, and `_cosell_fields` once held only 1,000
characters of targets; every target and every index must survive."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import MetaData, inspect, select

from connector.emulator import Emulator
from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.schema_mirror.tables import meta_tables
from tests.conftest import mapping_for, settings_for

ORG = Path(__file__).resolve().parents[2] / "data" / "orgs" / "activities"
ENROLLMENT = "cosellpartner__Partner_Program_Enrollment_Request__c"
MAPPING = f"""version: 1
objects:
  Account: {{direction: read_only}}
  User: {{direction: read_only}}
  Event: {{direction: read_write, create: false}}
  {ENROLLMENT}:
    direction: read_write
    external_id: cosellpartner__Enrollment_Request_External_Identifier__c
"""


def test_real_describe_payloads_with_a_polymorphic_reference_mirror(database, tmp_path):
    path = tmp_path / "mapping.yaml"
    path.write_text(MAPPING)
    what_targets = next(f["referenceTo"] for f in json.loads((ORG / "Event.json").read_text())["fields"]
                        if f["name"] == "WhatId")
    assert len(what_targets) == 80
    with Emulator(ORG, records=12, seed=4) as org:
        mirror = SchemaMirror(SalesforceClient(settings_for(org)), database.engine, mapping_for(database, path))
        plan = mirror.plan()
        assert plan.problems == []
        mirror.apply(plan)
        counts = mirror.load(plan, ["Account", "User"])
        assert counts == {"Account": 12, "User": 12}

    meta = meta_tables(MetaData(schema=database.schema))["fields"]
    with database.engine.connect() as conn:
        stored = conn.execute(select(meta.c.reference_to).where(
            (meta.c.object_name == "Event") & (meta.c.field_name == "WhatId"))).scalar_one()
    assert stored.split(",") == what_targets, "every target of the polymorphic reference is kept"

    inspector = inspect(database.engine)
    event = {c["name"] for c in inspector.get_columns("event", schema=database.schema)}
    assert {"whatid", "whoid", "_whatid_uuid", "_whoid_uuid"} <= event
    indexed = {tuple(i["column_names"]) for i in inspector.get_indexes("event", schema=database.schema)}
    assert ("whatid",) in indexed

    table = ENROLLMENT.lower()
    columns = {c["name"] for c in inspector.get_columns(table, schema=database.schema)}
    of_record = "cosellpartner__authorized_distributor_account_of_record__c"
    secondary = "cosellpartner__authorized_distributor_account_secondary__c"
    assert {of_record, secondary} <= columns
    uuid_columns = [c for c in columns if c.startswith("_cosellpartner__")]
    assert len(uuid_columns) == 2 and all(len(c) <= 63 for c in uuid_columns), \
        "one parent-UUID column per reference, each a name PostgreSQL keeps whole"
    indexes = {tuple(i["column_names"]): (i["name"], bool(i["unique"]))
               for i in inspector.get_indexes(table, schema=database.schema)}
    assert (of_record,) in indexes and (secondary,) in indexes, "both long references are indexed"
    assert indexes[("cosellpartner__enrollment_request_external_identifier__c",)][1] is True
    assert len({name for name, _ in indexes.values()}) == len(indexes)

