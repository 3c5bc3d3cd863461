"""The sync engine against the emulator over HTTPS, on SQLite and PostgreSQL:
changes travel both ways, the connector's own writes never echo, conflicts are
resolved by policy and logged, deletes travel, children created in the portal
before their parent reach Salesforce linked, rejected records are parked."""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal

import pytest
from sqlalchemy import MetaData, delete, func, insert, select, update

from connector.salesforce.client import SalesforceClient
from connector.schema_mirror.mirror import SchemaMirror
from connector.sync import cosell_rules
from connector.sync.engine import SyncEngine
from tests.conftest import mapping_for, settings_for


class Harness:
    """One org, one database, the connector between them; `tick()` moves the org's clock a second."""

    def __init__(self, org, database, mapping_path=None):
        self.org, self.database = org, database
        self.client = SalesforceClient(settings_for(org))
        mapping = mapping_for(database, mapping_path)
        self.mirror = SchemaMirror(self.client, database.engine, mapping)
        self.mirror.apply(self.mirror.plan())
        self.engine = SyncEngine(self.client, database.engine, mapping, self.mirror)
        cosell_rules.install(self.engine)   # as connector.bootstrap wires it
        self.schemas = self.engine.prepare()
        self.tables = self.engine.tables(self.schemas)

    def tick(self, seconds: int = 1) -> None:
        self.org.advance_clock(seconds=seconds)

    def sync(self, *objects):
        self.tick()
        report = self.engine.run(objects or None)
        assert report.status in ("succeeded", "parked", "retrying"), report.error
        return report

    def rows(self, name: str, *where):
        table = self.tables[name]
        with self.database.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(table).where(*where))]

    def execute(self, statement):
        """A write by the portal (any SQL client): plain SQL, no connector involved."""
        with self.database.engine.begin() as conn:
            return conn.execute(statement)

    def conflicts(self):
        with self.database.engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(self.engine.state.conflicts))]


@pytest.fixture
def h(emulator, database):
    return Harness(emulator, database)


def test_initial_load_then_idle_run_changes_nothing(h):
    first = h.sync()
    for name in ("Account", "Opportunity", "Co_Sell_Participant__c", "Deal_Registration__c"):
        assert len(h.rows(name)) == h.org.store.count(name), name
        assert first.objects[name].created_remote == 0
    h.org.calls.reset()
    second = h.sync()
    assert all(c.pulled == 0 and c.updated_remote == 0 and c.created_remote == 0 for c in second.objects.values())
    assert h.org.calls["collections_update"] == 0 and h.org.calls["collections_upsert"] == 0, "no echo"


def test_a_salesforce_change_reaches_the_portal(h):
    h.sync()
    opp = h.org.records("SELECT Id FROM Opportunity LIMIT 1")[0]["Id"]
    h.tick()
    h.org.update("Opportunity", opp, {"NextStep": "Joint call with AWS", "Amount": 4242.42})
    h.sync()
    row = h.rows("Opportunity", h.tables["Opportunity"].c.sfid == opp)[0]
    assert row["nextstep"] == "Joint call with AWS" and row["amount"] == Decimal("4242.42")


def test_a_portal_edit_reaches_salesforce_and_does_not_come_back(h):
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="Partner kickoff booked"))
    report = h.sync()
    assert report.objects["Opportunity"].updated_remote == 1
    assert h.org.get("Opportunity", row["sfid"])["NextStep"] == "Partner kickoff booked"
    h.org.calls.reset()
    again = h.sync()
    assert again.objects["Opportunity"].updated_remote == 0 and again.objects["Opportunity"].updated_local == 0


def test_records_created_in_the_portal_are_created_once_and_linked(h):
    h.sync()
    account = h.rows("Account")[0]
    opp_t, part_t = h.tables["Opportunity"], h.tables["Co_Sell_Participant__c"]
    h.execute(insert(opp_t).values(name="Portal deal", stagename="Prospecting",
                                   closedate=__import__("datetime").date(2026, 6, 30), accountid=account["sfid"]))
    opp_uuid = h.rows("Opportunity", opp_t.c.name == "Portal deal")[0]["_uuid"]
    h.execute(insert(part_t).values(role__c="System Integrator", attribution__c="Influenced",
                                    _opportunity__c_uuid=opp_uuid))
    report = h.sync()
    assert report.objects["Opportunity"].created_remote == 1
    assert report.objects["Co_Sell_Participant__c"].created_remote == 1
    in_org = h.org.records(f"SELECT Id, Portal_Id__c FROM Opportunity WHERE Name = 'Portal deal'")
    assert len(in_org) == 1 and in_org[0]["Portal_Id__c"] == opp_uuid
    parts = h.org.records(f"SELECT Id, Opportunity__c FROM Co_Sell_Participant__c "
                          f"WHERE Opportunity__c = '{in_org[0]['Id']}' AND Role__c = 'System Integrator'")
    assert len(parts) == 1
    h.sync()
    h.sync()
    assert len(h.org.records("SELECT Id FROM Opportunity WHERE Name = 'Portal deal'")) == 1, "no duplicate"
    local = h.rows("Co_Sell_Participant__c", part_t.c.sfid == parts[0]["Id"])[0]
    assert local["opportunity__c"] == in_org[0]["Id"], "the child learns its parent's Id"


def test_concurrent_edits_are_resolved_by_policy_and_logged(h):
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="portal says", stagename="Closed Lost"))
    h.tick(5)
    h.org.update("Opportunity", row["sfid"], {"NextStep": "org says", "StageName": "Negotiation/Review"})
    h.sync()
    final_local = h.rows("Opportunity", t.c._uuid == row["_uuid"])[0]
    final_org = h.org.get("Opportunity", row["sfid"])
    # latest_wins on the object: the org edited later; StageName is salesforce_wins by field policy.
    assert final_local["nextstep"] == final_org["NextStep"] == "org says"
    assert final_local["stagename"] == final_org["StageName"] == "Negotiation/Review"
    logged = {(c["field_name"], c["policy"]) for c in h.conflicts()}
    assert ("NextStep", "latest_wins") in logged and ("StageName", "salesforce_wins") in logged
    lost = next(c for c in h.conflicts() if c["field_name"] == "NextStep")
    assert "portal says" in lost["local_value"] and "org says" in lost["remote_value"]
    assert lost["local_changed_at"] is not None and lost["remote_changed_at"] is not None


def test_deletes_travel_both_ways(h):
    h.sync()
    opps = h.rows("Opportunity")
    h.tick()
    h.org.delete("Opportunity", opps[0]["sfid"])
    h.sync()
    assert h.rows("Opportunity", h.tables["Opportunity"].c.sfid == opps[0]["sfid"]) == []
    h.execute(h.tables["Opportunity"].delete().where(h.tables["Opportunity"].c._uuid == opps[1]["_uuid"]))
    report = h.sync()
    assert report.objects["Opportunity"].deleted_remote == 1
    assert h.org.get("Opportunity", opps[1]["sfid"])["IsDeleted"] is True


def test_a_record_salesforce_rejects_is_parked_and_the_rest_sync(h):
    h.sync()
    t = h.tables["Opportunity"]
    bad, good = h.rows("Opportunity")[:2]
    h.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    h.execute(update(t).where(t.c._uuid == good["_uuid"]).values(nextstep="still fine"))
    report = h.sync()
    assert report.status == "parked" and report.objects["Opportunity"].parked == 1
    assert h.org.get("Opportunity", good["sfid"])["NextStep"] == "still fine"
    parked = h.rows("Opportunity", t.c._uuid == bad["_uuid"])[0]
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in parked["_sync_error"]
    with h.database.engine.connect() as conn:
        letter = conn.execute(select(h.engine.state.dead_letters)).mappings().one()
    assert letter["error_code"] == "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" and letter["fields"] == '["StageName"]'
    h.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Qualification"))
    fixed = h.sync()
    assert fixed.status == "succeeded"
    assert h.org.get("Opportunity", bad["sfid"])["StageName"] == "Qualification"
    assert h.rows("Opportunity", t.c._uuid == bad["_uuid"])[0]["_sync_error"] is None


def test_pushing_n_changes_costs_ceil_n_over_200_calls(h):
    h.sync()
    t = h.tables["Account"]
    accounts = h.rows("Account")
    with h.org.store.lock:
        h.org.store.bulk_load("Account", ({"Id": h.org.store.new_id("Account"), "Name": f"Bulk {i}"}
                                          for i in range(450)))
    h.sync()
    n = len(h.rows("Account"))
    h.execute(update(t).values(description="touched by the portal"))
    h.org.calls.reset()
    report = h.sync("Account")
    assert report.objects["Account"].updated_remote == n
    # each 200 updates go in one composite call that reads them first (no lost update), and nothing else
    assert h.org.calls["composite"] == math.ceil(n / 200)
    assert h.org.calls["collections_update"] == 0, "no write-back: nothing was changed in Salesforce meanwhile"
    assert report.api_calls == math.ceil(n / 200) + 1, "the pushes and the one pull query"
    pulls = h.org.calls["query"] + h.org.calls["query_more"] + h.org.calls["query_all"]
    assert pulls <= 2, "an idle pull of one object costs one call"
    assert accounts


def test_an_idle_poll_of_m_objects_costs_ceil_m_over_5_calls(h):
    h.sync()
    h.sync()
    m = len(h.schemas)
    h.org.calls.reset()
    report = h.sync()
    assert all(c.pulled == 0 for c in report.objects.values())
    assert h.org.calls.total() == math.ceil(m / 5), h.org.calls.snapshot()


def test_pulling_n_changed_records_costs_ceil_n_over_2000_calls(h):
    h.sync()
    with h.org.store.lock:
        h.org.store.bulk_load("Account", ({"Id": h.org.store.new_id("Account"), "Name": f"Pulled {i}"}
                                          for i in range(4500)))
    h.org.calls.reset()
    report = h.sync("Account")
    assert report.objects["Account"].pulled == 4500
    assert h.org.calls.total() <= math.ceil(4500 / 2000) + 1


def test_large_reads_go_through_bulk_2(h):
    """Above the threshold, an initial load reads 10,000 rows a call through Bulk 2.0 (here 12,000-odd
    rows: two result pages, each parsed in batches), and the rows it writes are the same as the REST
    path's (nulls, booleans, decimals and datetimes from CSV)."""
    with h.org.store.lock:
        h.org.store.bulk_load("Account", ({"Id": h.org.store.new_id("Account"), "Name": f"Bulk {i}",
                                           "AnnualRevenue": 1000 + i, "Is_Partner__c": i % 2 == 0}
                                          for i in range(12000)))
    h.engine.bulk_threshold = 1000
    h.org.calls.reset()
    report = h.sync("Account")
    assert report.objects["Account"].pulled == h.org.store.count("Account") == len(h.rows("Account"))
    assert h.org.calls["bulk2_create"] == 1 and h.org.calls["query_more"] == 0
    assert h.org.calls["bulk2_results"] == math.ceil(h.org.store.count("Account") / 10_000) == 2
    t = h.tables["Account"]
    row = h.rows("Account", t.c.name == "Bulk 7")[0]
    assert row["annualrevenue"] == Decimal("1007") and row["is_partner__c"] is False
    assert row["description"] is None and row["systemmodstamp"].tzinfo is not None


def test_deletes_older_than_the_delete_log_are_found_by_reconciling_ids(h):
    h.sync()
    opp = h.rows("Opportunity")[0]
    h.tick()
    h.org.delete("Opportunity", opp["sfid"])
    h.org.advance_clock(days=16)   # purged from the recycle bin: queryAll no longer shows it
    h.org.store.purge_delete_log()
    report = h.sync("Opportunity")
    assert report.objects["Opportunity"].deleted_local == 1
    assert h.rows("Opportunity", h.tables["Opportunity"].c.sfid == opp["sfid"]) == []


def test_objects_without_a_delete_log_are_reconciled_by_id_set(h):
    h.sync()
    territory = h.org.records("SELECT Id FROM UserTerritory2Association LIMIT 1")[0]["Id"]
    h.tick()
    h.org.delete("UserTerritory2Association", territory)
    h.org.advance_clock(hours=2)
    h.sync()
    assert h.rows("UserTerritory2Association", h.tables["UserTerritory2Association"].c.sfid == territory) == []


def test_the_quota_guard_stops_the_run_cleanly_and_the_next_run_resumes(h):
    h.sync()
    t = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == row["_uuid"]).values(nextstep="after the quota resets"))
    h.org.set_daily_limit(100, used=95)
    h.tick()
    stopped = h.engine.run()
    assert stopped.status == "stopped" and "daily limit" in stopped.error
    assert h.org.get("Opportunity", row["sfid"]).get("NextStep") != "after the quota resets"
    h.org.set_daily_limit(15000, used=0)
    h.sync()
    assert h.org.get("Opportunity", row["sfid"])["NextStep"] == "after the quota resets", "nothing lost"


def test_creates_the_mapping_forbids_are_parked_with_a_clear_reason(emulator, database, tmp_path):
    from tests.integration.mirror.test_mirror import _mapping_file

    def no_account_creates(data):
        data["objects"]["Account"]["create"] = False
    h = Harness(emulator, database, _mapping_file(tmp_path, no_account_creates))
    h.sync()
    h.execute(insert(h.tables["Account"]).values(name="Portal-only account"))
    report = h.sync("Account")
    assert report.objects["Account"].parked == 1 and report.objects["Account"].created_remote == 0
    row = h.rows("Account", h.tables["Account"].c.name == "Portal-only account")[0]
    assert "create: false" in row["_sync_error"]
    assert h.org.records("SELECT Id FROM Account WHERE Name = 'Portal-only account'") == []


def test_a_parked_record_deleted_in_the_portal_leaves_no_parked_entry(h):
    """Tried: a parked update and a parked create, each then deleted in the portal. The admin's
    parked list must not keep records that no longer exist anywhere."""
    h.sync()
    t = h.tables["Opportunity"]
    bad = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    account = h.rows("Account")[0]
    h.execute(t.insert().values(name="Never accepted", stagename="Not A Stage", closedate=dt.date(2026, 1, 1),
                                accountid=account["sfid"]))
    new_uuid = h.rows("Opportunity", t.c.name == "Never accepted")[0]["_uuid"]
    assert h.sync().objects["Opportunity"].parked == 2
    h.execute(delete(t).where(t.c._uuid.in_([bad["_uuid"], new_uuid])))
    report = h.sync()
    assert report.status == "succeeded", report.error
    assert h.org.get("Opportunity", bad["sfid"])["IsDeleted"] is True, "the portal's delete reached Salesforce"
    with h.database.engine.connect() as conn:
        assert conn.execute(select(h.engine.state.dead_letters)).all() == []


def test_a_parked_record_salesforce_deletes_leaves_no_parked_entry_but_a_logged_conflict(h):
    """Tried: an update Salesforce refused, then the record deleted in Salesforce. The parked entry goes
    (the record is gone), the refused edit stays in the conflict log."""
    h.sync()
    t = h.tables["Opportunity"]
    bad = h.rows("Opportunity")[0]
    h.execute(update(t).where(t.c._uuid == bad["_uuid"]).values(stagename="Maybe Later"))
    assert h.sync().objects["Opportunity"].parked == 1
    h.tick()
    h.org.delete("Opportunity", bad["sfid"])
    h.sync()
    with h.database.engine.connect() as conn:
        assert conn.execute(select(h.engine.state.dead_letters)).all() == []
    (logged,) = [c for c in h.conflicts() if c["record_uuid"] == bad["_uuid"]]
    assert logged["field_name"] is None and "Maybe Later" in logged["local_value"]
    assert h.rows("Opportunity", t.c._uuid == bad["_uuid"]) == []


def test_retrying_a_parked_delete_sends_the_delete_again(h):
    """Tried: a portal delete Salesforce refused (the record was locked), then `retry_parked` once the
    lock is gone. The delete must go out again, not be dropped with its parked entry."""
    h.sync()
    t = h.tables["Opportunity"]
    victim = h.rows("Opportunity")[0]
    h.execute(delete(t).where(t.c._uuid == victim["_uuid"]))
    # The state a refused delete leaves (as the push records it: parked, its change consumed); the
    # emulator has no per-record delete refusal to produce it over the wire.
    now = dt.datetime.now(dt.timezone.utc)
    st = h.engine.state
    h.execute(st.dead_letters.insert().values(
        object_name="Opportunity", record_uuid=victim["_uuid"], sfid=victim["sfid"], operation="delete",
        error_code="ENTITY_IS_LOCKED", message="the record is locked for approval", fields="[]", attempts=1,
        first_failed_at=now, last_failed_at=now))
    h.execute(delete(st.changes).where(st.changes.c.row_uuid == victim["_uuid"]))
    assert h.org.get("Opportunity", victim["sfid"])["IsDeleted"] is False
    assert h.engine.retry_parked("Opportunity") == 1
    report = h.sync()
    assert report.objects["Opportunity"].deleted_remote == 1
    assert h.org.get("Opportunity", victim["sfid"])["IsDeleted"] is True
    with h.database.engine.connect() as conn:
        assert conn.execute(select(h.engine.state.dead_letters)).all() == []


def test_a_field_added_in_the_org_is_filled_by_a_full_read_without_touching_portal_edits(h):
    """Tried: a new Opportunity field with values in the org, mirrored while a row has an unsynced portal
    edit; then a full read. The new column gets the org's values, the portal edit still goes out, and
    the empty new column is not taken for a portal edit (no conflict, nothing blanked in Salesforce)."""
    h.sync()
    t = h.tables["Opportunity"]
    edited, other = h.rows("Opportunity")[:2]
    h.org.add_field("Opportunity", "Partner_Program_Code__c", "string", length=40)
    h.tick()
    for row, code in ((edited, "PP-1"), (other, "PP-2")):
        h.org.update("Opportunity", row["sfid"], {"Partner_Program_Code__c": code})
    h.execute(update(t).where(t.c._uuid == edited["_uuid"]).values(nextstep="edited before the new field"))
    h.mirror.apply(h.mirror.plan())
    h.tick()
    report = h.engine.run(["Opportunity"], full=True)
    assert report.status == "succeeded", report.error
    table = h.engine.tables(h.engine.prepare())["Opportunity"]
    with h.database.engine.connect() as conn:
        codes = dict(conn.execute(select(table.c.sfid, table.c.partner_program_code__c)).all())
    assert (codes[edited["sfid"]], codes[other["sfid"]]) == ("PP-1", "PP-2")
    in_org = h.org.get("Opportunity", edited["sfid"])
    assert (in_org["NextStep"], in_org["Partner_Program_Code__c"]) == ("edited before the new field", "PP-1")
    assert [c for c in h.conflicts() if c["field_name"] == "Partner_Program_Code__c"] == []
