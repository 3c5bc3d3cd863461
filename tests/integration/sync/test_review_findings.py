"""Findings of an adversarial review of the engine, kept as tests: latest_wins sees Salesforce's change
time in the read-before-update; a master delete after the portal saw every detail record is not
undone; a record parked on the way in stays parked when its row is pushed; undoing a refused edit
clears its parked entry; a restored master holds Salesforce's values."""

from __future__ import annotations

from sqlalchemy import delete, update

from tests.integration.sync.test_interleaving import Harness, _logged, _run, org, h  # noqa: F401


def test_latest_wins_in_judge_overwrites_knows_salesforce_changed_later(h):
    """NextStep is latest_wins (record policy). The org edits it after the portal did, after the pull:
    the later change (Salesforce's) should win."""
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="portal earlier"))
    h.tick(5)

    def org_edit(point, context):
        if point == "pulled" and context["object"] == "Opportunity":
            h.engine.hook = None
            h.org.update("Opportunity", row["sfid"], {"NextStep": "org later"})

    h.engine.hook = org_edit
    _run(h)
    entries = _logged(h, row["sfid"], row["_uuid"], "NextStep")
    assert entries, "conflict logged"
    print(entries[0]["policy"], entries[0]["reason"])
    assert h.org.get("Opportunity", row["sfid"])["NextStep"] == "org later", entries[0]["reason"]


def test_a_master_delete_after_the_portal_saw_every_child_is_not_undone(h):
    h.sync()
    opp_t = h.tables["Opportunity"]
    part_t = h.tables["Co_Sell_Participant__c"]
    opp_sfids = {p["opportunity__c"] for p in h.rows("Co_Sell_Participant__c")}
    row = [r for r in h.rows("Opportunity") if r["sfid"] in opp_sfids][0]
    child = h.rows("Co_Sell_Participant__c", part_t.c.opportunity__c == row["sfid"])[0]
    # the portal edits a participant: it goes out and its echo comes back at the next pull
    h.execute(update(part_t).where(part_t.c._uuid == child["_uuid"]).values(notes__c="seen and edited here"))
    h.sync()
    h.tick(5)
    h.execute(delete(opp_t).where(opp_t.c._uuid == row["_uuid"]))  # the portal has seen every child
    h.tick(5)
    h.sync()
    h.sync()
    entries = _logged(h, row["sfid"], row["_uuid"], None)
    assert h.org.get("Opportunity", row["sfid"])["IsDeleted"] is True, [e["reason"] for e in entries]


def test_a_record_parked_on_pull_stays_parked_after_its_row_is_pushed(h, database):
    from sqlalchemy import select
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.tick()
    h.org.update("Opportunity", row["sfid"], {"NextStep": "bad\x00value"})
    h.sync("Opportunity")
    dl = h.engine.state.dead_letters
    if database.engine.dialect.name == "sqlite":     # SQLite stores a NUL character: nothing to park
        assert h.rows("Opportunity", t.c._uuid == row["_uuid"])[0]["nextstep"] == "bad\x00value"
        return
    with database.engine.connect() as c:
        assert c.execute(select(dl.c.operation).where(dl.c.sfid == row["sfid"])).all(), "parked on pull"
    h.sync("Opportunity")
    with database.engine.connect() as c:
        assert c.execute(select(dl.c.operation).where(dl.c.sfid == row["sfid"])).all(), "control: kept by a plain run"
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(description="portal edit of another field"))
    h.sync("Opportunity")
    with database.engine.connect() as c:
        left = c.execute(select(dl.c.operation).where(dl.c.sfid == row["sfid"])).all()
    assert left, "the pull-parked entry was cleared by the successful push of another field; never re-read"


def test_undoing_a_not_updateable_edit_clears_the_parked_entry(h, database):
    from sqlalchemy import select
    h.sync()
    obj = h.schemas["Co_Sell_Participant__c"]
    locked = [f for f in obj.fields if f.name == "Opportunity__c"][0]
    assert not locked.updateable
    t = h.tables["Co_Sell_Participant__c"]
    child = h.rows("Co_Sell_Participant__c")[0]
    other = [r for r in h.rows("Opportunity") if r["sfid"] != child["opportunity__c"]][0]
    h.execute(update(t).where(t.c._uuid == child["_uuid"]).values(opportunity__c=other["sfid"]))
    h.sync()
    dl = h.engine.state.dead_letters
    with database.engine.connect() as c:
        assert c.execute(select(dl.c.error_code).where(dl.c.record_uuid == child["_uuid"])).scalar() == "FIELD_NOT_UPDATEABLE"
    # the admin follows the message: "undo the edit"
    h.execute(update(t).where(t.c._uuid == child["_uuid"]).values(opportunity__c=child["opportunity__c"]))
    h.sync()
    h.sync()
    with database.engine.connect() as c:
        left = c.execute(select(dl.c.error_code).where(dl.c.record_uuid == child["_uuid"])).all()
    assert not left, f"still parked after the edit was undone: {left}"


def test_a_master_restored_because_of_unseen_children_holds_salesforce_s_values(h):
    h.sync()
    opp_t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.tick(2)
    h.org.update("Opportunity", row["sfid"], {"NextStep": "org edit before the portal delete"})
    h.tick(5)
    h.execute(delete(opp_t).where(opp_t.c._uuid == row["_uuid"]))
    h.tick(5)
    account = h.rows("Account")[0]["sfid"]
    h.org.create("Co_Sell_Participant__c", {"Opportunity__c": row["sfid"], "Partner_Account__c": account,
                                            "Role__c": "Reseller", "Attribution__c": "Influenced"})
    h.sync()
    h.sync()
    h.sync()
    assert h.org.get("Opportunity", row["sfid"])["IsDeleted"] is False
    local = h.rows("Opportunity", opp_t.c.sfid == row["sfid"])
    assert local, "restored"
    assert local[0]["nextstep"] == h.org.get("Opportunity", row["sfid"])["NextStep"], "both sides agree"


def test_a_page_that_loses_a_lock_race_is_applied_again_not_failed(h):
    """A portal transaction holding the page's rows makes the database roll the page back (a deadlock
    on PostgreSQL, a busy write lock on SQLite): the page is applied again, once, and the run succeeds."""
    import sqlite3

    import psycopg.errors
    from sqlalchemy.exc import OperationalError

    h.sync()
    row = h.rows("Opportunity")[0]
    h.tick()
    h.org.update("Opportunity", row["sfid"], {"NextStep": "after a lock race"})
    lost = []

    def race(point, context):
        if point == "applying" and context["object"] == "Opportunity" and context["records"] and not lost:
            lost.append(point)
            cause = (psycopg.errors.DeadlockDetected("deadlock detected") if h.database.name == "postgresql"
                     else sqlite3.OperationalError("database is locked"))
            raise OperationalError("UPDATE opportunity ...", {}, cause)

    h.engine.hook = race
    report = h.sync()
    assert lost, "the race happened"
    assert report.status == "succeeded", report.error
    assert h.rows("Opportunity", h.tables["Opportunity"].c._uuid == row["_uuid"])[0]["nextstep"] == "after a lock race"
    assert report.objects["Opportunity"].updated_local == 1, "counted once, not once per attempt"
