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
