"""An idle sync cycle on a mirrored database: it only reads (no DDL, so a portal transaction held
open cannot stall it), a one-object run costs the same however many other objects are mapped, and
capture follows the mapping when `cosell mirror` makes another object sync."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import yaml
from sqlalchemy import event, select, update

from tests.integration.sync.test_sync import Harness

SHIPPED = Path(__file__).resolve().parents[3] / "connector" / "mappings" / "cosell.yaml"
DDL = ("CREATE", "DROP", "ALTER", "COMMENT")


def _mapping(tmp_path: Path, name: str, keep=None, read_only=()) -> Path:
    body = yaml.safe_load(SHIPPED.read_text())
    if keep is not None:
        body["objects"] = {k: v for k, v in body["objects"].items() if k in keep}
    for obj in read_only:
        body["objects"][obj] = {"direction": "read_only"}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(body))
    return path


class Statements:
    """Every SQL statement the engine sends while the block runs."""

    def __init__(self, engine):
        self.engine, self.seen = engine, []

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        self.seen.append(statement)

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    @property
    def ddl(self) -> list[str]:
        return [s for s in self.seen if s.lstrip().upper().startswith(DDL)]


def test_an_idle_cycle_runs_no_ddl(emulator, database):
    h = Harness(emulator, database)
    h.sync()
    with Statements(database.engine) as sql:
        report = h.sync()
    assert report.status == "succeeded"
    assert sql.seen and sql.ddl == []


def test_a_new_process_on_an_up_to_date_database_runs_no_ddl(emulator, database):
    """`cosell sync` starts a fresh process every time: its first prepare must only read too."""
    Harness(emulator, database).sync()
    with Statements(database.engine) as sql:
        h = Harness(emulator, database)      # mirror (nothing to change) and prepare, as a new process does
        h.sync()
    assert [s for s in sql.ddl if "TRIGGER" in s.upper() or "FUNCTION" in s.upper()] == []


def test_a_portal_transaction_left_open_does_not_stall_an_idle_sync(emulator, database):
    # SQLite has one writer at a time: there a portal transaction that wrote blocks every writer until it
    # ends (the sync waits up to its busy timeout), so the open portal transaction only reads.
    writes = database.name == "postgresql"
    h = Harness(emulator, database)
    h.sync()
    opp = h.tables["Opportunity"]
    portal = database.engine.connect()
    transaction = portal.begin()
    try:
        first, second = portal.execute(select(opp.c._id).order_by(opp.c._id).limit(2)).scalars().all()
        portal.execute(select(opp).where(opp.c._id == first)).all()
        if writes:
            portal.execute(update(opp).where(opp.c._id == second).values(nextstep="edited, not committed"))
        else:
            portal.execute(select(opp).where(opp.c._id == second)).all()
        result = {}
        h.tick()
        worker = threading.Thread(target=lambda: result.update(report=h.engine.run()), daemon=True)
        worker.start()
        worker.join(timeout=20)
        assert not worker.is_alive(), "the idle sync waited for the portal's open transaction"
        assert result["report"].status == "succeeded", result["report"].error
    finally:
        transaction.rollback()
        portal.close()


def _one_object_run(h: Harness) -> int:
    h.sync()
    h.sync("Opportunity")                     # the process is warm, as in `cosell serve`
    h.tick()
    with Statements(h.database.engine) as sql:
        report = h.engine.run(["Opportunity"])
    assert report.status == "succeeded", report.error
    return len(sql.seen)


def test_a_one_object_job_costs_the_same_however_many_objects_are_mapped(emulator, database, tmp_path):
    few = _mapping(tmp_path, "few.yaml", keep={"Account", "Opportunity", "User"})
    with_few = _one_object_run(Harness(emulator, database, few))
    with_all = _one_object_run(Harness(emulator, database))
    assert with_all == with_few


def test_capture_follows_mirror_when_another_object_becomes_synced(emulator, database, tmp_path):
    before = _mapping(tmp_path, "before.yaml", read_only=["Co_Sell_Participant__c"])
    h = Harness(emulator, database, before)
    h.sync()
    after = Harness(emulator, database)       # `cosell mirror` with the new mapping: apply, then prepare
    after.sync()
    part = after.tables["Co_Sell_Participant__c"]
    row = after.rows("Co_Sell_Participant__c")[0]
    after.execute(update(part).where(part.c._id == row["_id"]).values(notes__c="from the portal"))
    with database.engine.connect() as conn:
        logged = conn.execute(select(after.engine.state.changes.c.row_uuid).where(
            after.engine.state.changes.c.object_name == "Co_Sell_Participant__c")).scalars().all()
    assert logged == [row["_uuid"]]
    report = after.sync()
    assert report.objects["Co_Sell_Participant__c"].updated_remote == 1
    assert emulator.get("Co_Sell_Participant__c", row["sfid"])["Notes__c"] == "from the portal"


def test_capture_dropped_behind_its_back_is_installed_again_by_prepare(emulator, database):
    """A SQLite batch migration (`cosell mirror` widening a column) rebuilds a table without its
    triggers; the fingerprint still matches, so only the catalog can tell prepare to reinstall."""
    from sqlalchemy import text

    h = Harness(emulator, database)
    h.sync()
    with database.engine.begin() as conn:
        if database.name == "sqlite":
            for op in ("ins", "upd", "del"):
                conn.execute(text(f'DROP TRIGGER "_cosell_{op}_opportunity"'))
        else:
            conn.execute(text(f'DROP TRIGGER "_cosell_capture" ON "{database.schema}"."opportunity"'))
    h.engine.prepare()
    opp = h.tables["Opportunity"]
    row = h.rows("Opportunity")[0]
    h.execute(update(opp).where(opp.c._id == row["_id"]).values(nextstep="after the rebuild"))
    report = h.sync()
    assert report.objects["Opportunity"].updated_remote == 1
    assert emulator.get("Opportunity", row["sfid"])["NextStep"] == "after the rebuild"
