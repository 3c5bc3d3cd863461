"""`cosell sync` as an admin runs it: a summary table, exit 1 when records were parked,
exit 2 on a fatal error such as a missing mirror."""

from __future__ import annotations

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator
from tests.e2e.test_mirror_cli import _env

runner = CliRunner()


def test_sync_prints_a_summary_and_flags_parked_records(tmp_path):
    with Emulator("cosell_demo", records=10, seed=4) as org:
        env = _env(org, tmp_path)
        not_yet = runner.invoke(app, ["sync"], env=env)
        assert not_yet.exit_code == 2 and "cosell mirror" in not_yet.output
        assert runner.invoke(app, ["mirror", "--no-load"], env=env).exit_code == 0
        org.advance_clock(seconds=1)
        first = runner.invoke(app, ["sync"], env=env)
        assert first.exit_code == 0, first.output
        assert "succeeded" in first.output and "Opportunity" in first.output
        engine = create_engine(env["COSELL_DATABASE_URL"])
        with engine.begin() as conn:
            conn.execute(text("UPDATE opportunity SET stagename = 'Not A Stage' WHERE _id = 1"))
        org.advance_clock(seconds=1)
        parked = runner.invoke(app, ["sync", "--object", "Opportunity"], env=env)
        assert parked.exit_code == 1, parked.output
        assert "1 record(s) parked" in parked.output
        unknown = runner.invoke(app, ["sync", "--object", "Nope__c"], env=env)
        assert unknown.exit_code == 2 and "not mirrored: Nope__c" in unknown.output


def test_mirror_again_keeps_portal_edits_and_fills_new_columns_and_sync_respects_the_lock(tmp_path):
    """Tried: a pending portal edit, then `cosell mirror` with nothing new (must neither overwrite nor send
    it), then a field added in the org (a full read fills it and sends the edit, saying so), then
    `cosell sync` while another process holds the sync lock (refused, exit 2)."""
    from connector.scheduler import SyncLock

    with Emulator("cosell_demo", records=10, seed=4) as org:
        env = {**_env(org, tmp_path), "COLUMNS": "200"}
        org.advance_clock(seconds=1)
        assert runner.invoke(app, ["mirror"], env=env).exit_code == 0
        engine = create_engine(env["COSELL_DATABASE_URL"])
        with engine.begin() as conn:
            sfid = conn.execute(text("SELECT sfid FROM opportunity WHERE _id = 1")).scalar()
            conn.execute(text("UPDATE opportunity SET nextstep = 'portal edit' WHERE _id = 1"))
        again = runner.invoke(app, ["mirror"], env=env)
        assert again.exit_code == 0 and "nothing to change" in again.output
        assert "Read-write objects" not in again.output, "no sync run when nothing changed"
        with engine.connect() as conn:
            assert conn.execute(text("SELECT nextstep FROM opportunity WHERE _id = 1")).scalar() == "portal edit"
        assert org.get("Opportunity", sfid).get("NextStep") != "portal edit"

        org.add_field("Opportunity", "Deal_Desk_Code__c", "string", length=20)
        org.update("Opportunity", sfid, {"Deal_Desk_Code__c": "DD-7"})
        org.advance_clock(seconds=1)
        grown = runner.invoke(app, ["mirror"], env=env)
        assert grown.exit_code == 0, grown.output
        assert "read again in full (new columns)" in grown.output and "1 pending portal change(s) sent" in grown.output
        with engine.connect() as conn:
            assert conn.execute(text("SELECT deal_desk_code__c FROM opportunity WHERE _id = 1")).scalar() == "DD-7"
        assert org.get("Opportunity", sfid)["NextStep"] == "portal edit"

        lock = SyncLock(engine, ["Opportunity"])
        assert lock.acquire("Opportunity", "another-process", ttl=60)
        busy = runner.invoke(app, ["sync", "--object", "Opportunity"], env=env)
        assert busy.exit_code == 2 and "Opportunity is being synced by another-process" in busy.output
        lock.release("Opportunity", "another-process")
        org.advance_clock(seconds=1)
        assert runner.invoke(app, ["sync", "--object", "Opportunity"], env=env).exit_code == 0
