"""Apply decides without touching anything: the same page and portal side give the same plan, and the
plan says every write (rows, conflicts, write-backs) before any is made."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import MetaData

from connector.mapping import ObjectMapping
from connector.schema_mirror.model import FieldSchema, ObjectSchema
from connector.schema_mirror.tables import object_table
from connector.sync.apply import PageContext, PagePlanner
from connector.sync.values import encode_base

NOW = dt.datetime(2026, 12, 2, 9, 0, tzinfo=dt.timezone.utc)
STAMP = "2026-12-02T08:59:00.000+0000"


def opportunity() -> ObjectSchema:
    editable = dict(createable=True, updateable=True)
    fields = [FieldSchema("Id", "id"), FieldSchema("IsDeleted", "boolean"), FieldSchema("SystemModstamp", "datetime"),
              FieldSchema("Name", "string", length=120, **editable), FieldSchema("NextStep", "string", length=255,
                                                                                   **editable)]
    return ObjectSchema(name="Opportunity", table="opportunity", label="Opportunity", key_prefix="006", custom=False,
                        queryable=True, replicateable=True, createable=True, updateable=True, deletable=True,
                        fields=fields, synced=True)


def planner(obj: ObjectSchema, **mapping) -> PagePlanner:
    table = object_table(obj, MetaData(), "sqlite")
    return PagePlanner(obj, {obj.name: table}, ObjectMapping(direction="read_write", **mapping))


def context(rows=(), dirty=None) -> PageContext:
    return PageContext(local_rows={r["sfid"]: r for r in rows}, by_uuid={}, dirty=dirty or {}, parked=set(),
                       deleted_here={}, ref_maps={}, masters={})


def row(**values):
    base = {"Name": "Acme", "NextStep": "call", "IsDeleted": False}
    return {"_uuid": "u1", "sfid": "006000000000001AAA", "name": "Acme", "nextstep": "call", "isdeleted": False,
            "_base": encode_base(base), **values}


def test_a_new_record_is_planned_as_one_insert_with_its_base():
    obj = opportunity()
    plan = planner(obj).plan([{"Id": "006000000000009AAA", "Name": "New", "NextStep": None, "IsDeleted": False,
                               "SystemModstamp": STAMP}], context(), NOW)
    assert [r["name"] for r in plan.inserts] == ["New"] and plan.counts.created_local == 1
    assert plan.updates == [] and plan.conflicts == [] and plan.restores == []


def test_both_sides_changed_one_field_is_a_planned_conflict_and_nothing_is_written_yet():
    obj = opportunity()
    local = row(nextstep="portal's step")
    page = [{"Id": local["sfid"], "Name": "Acme", "NextStep": "org's step", "IsDeleted": False, "SystemModstamp": STAMP}]
    p = planner(obj, conflict_policy="salesforce_wins")
    plan = p.plan(page, context([local], dirty={"u1": NOW}), NOW)
    again = p.plan(page, context([row(nextstep="portal's step")], dirty={"u1": NOW}), NOW)
    assert plan == again, "the same page and portal side give the same plan"
    (row_uuid, sfid, conflicts), = plan.conflicts
    assert (row_uuid, sfid) == ("u1", local["sfid"])
    assert [(c.field, c.local, c.remote, c.winner) for c in conflicts] == [
        ("NextStep", "portal's step", "org's step", "salesforce")]
    (updated, values), = plan.updates
    assert updated == "u1" and values["nextstep"] == "org's step"
    assert local["nextstep"] == "portal's step", "the planner never writes the rows it is shown"


def test_a_salesforce_delete_of_a_row_edited_here_is_planned_by_the_record_policy():
    obj = opportunity()
    local = row(nextstep="portal's step")
    page = [{"Id": local["sfid"], "Name": "Acme", "NextStep": "call", "IsDeleted": True, "SystemModstamp": STAMP}]
    kept = planner(obj, conflict_policy="local_wins").plan(page, context([local], dirty={"u1": NOW}), NOW)
    assert kept.requeue == ["u1"] and kept.updates == [("u1", {"sfid": None, "_base": None})], \
        "the portal's edit wins: the row is sent again as a new record"
    gone = planner(obj, conflict_policy="salesforce_wins").plan(page, context([local], dirty={"u1": NOW}), NOW)
    assert gone.deletes == ["u1"] and gone.counts.deleted_local == 1
    assert gone.conflicts and gone.conflicts[0][2][0].field is None, "the record-level conflict is logged"
