"""`cosell mirror`, `cosell schema snapshot` and `cosell mapping` as an admin runs
them, configured only through COSELL_* environment variables."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator

runner = CliRunner()


def _env(org: Emulator, tmp_path) -> dict[str, str]:
    info = org.connection_info()
    return {"COSELL_LOGIN_URL": info["login_url"], "COSELL_AUTH": "jwt", "COSELL_USERNAME": info["username"],
            "COSELL_CONSUMER_KEY": info["consumer_key"], "COSELL_PRIVATE_KEY": info["private_key"],
            "COSELL_CA_CERT": info["ca_cert"], "COSELL_DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
            "COSELL_CONFIG": str(tmp_path / "none.yaml")}


def test_mirror_plan_then_apply_then_nothing_to_do(tmp_path):
    with Emulator("cosell_demo", records=15, seed=2) as org:
        env = _env(org, tmp_path)
        planned = runner.invoke(app, ["mirror", "--plan"], env=env)
        assert planned.exit_code == 0, planned.output
        assert "create_table" in planned.output and "Opportunity" in planned.output
        assert not (tmp_path / "portal.db").exists() or "opportunity" not in planned.output.lower().split("plan")[0]
        applied = runner.invoke(app, ["mirror"], env=env)
        assert applied.exit_code == 0, applied.output
        assert "Opportunity: 15 rows" in applied.output
        again = runner.invoke(app, ["mirror", "--plan"], env=env)
        assert "nothing to change" in again.output


def test_snapshot_folder_serves_as_an_emulated_org(tmp_path):
    with Emulator("cosell_demo") as org:
        result = runner.invoke(app, ["schema", "snapshot", str(tmp_path / "snap")], env=_env(org, tmp_path))
        assert result.exit_code == 0, result.output
    written = {p.name for p in (tmp_path / "snap").iterdir()}
    assert {"describeGlobal.json", "Opportunity.json", "Co_Sell_Participant__c.json"} <= written
    body = json.loads((tmp_path / "snap" / "Opportunity.json").read_text())
    assert body["name"] == "Opportunity" and any(f["name"] == "Portal_Id__c" for f in body["fields"])
    with Emulator(tmp_path / "snap", records=3) as copy:
        assert copy.store.count("Opportunity") == 3


def test_bad_credentials_end_with_a_clear_error_and_exit_2(tmp_path):
    with Emulator("cosell_demo") as org:
        env = {**_env(org, tmp_path), "COSELL_USERNAME": "nobody@example.com"}
        result = runner.invoke(app, ["mirror", "--plan"], env=env)
    assert result.exit_code == 2
    assert "user hasn't approved this consumer" in result.output


def test_mapping_schema_and_check(tmp_path):
    schema = runner.invoke(app, ["mapping", "schema"])
    assert schema.exit_code == 0 and "objects" in json.loads(schema.output)["properties"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\nobjects:\n  Opportunity:\n    direction: both\n")
    result = runner.invoke(app, ["mapping", "check", str(bad)])
    assert result.exit_code == 2 and "read_only" in result.output and "objects.Opportunity.direction" in result.output


def test_a_change_the_database_refuses_names_the_object_and_leaves_the_database_as_it_was(tmp_path):
    import sqlite3

    with sqlite3.connect(tmp_path / "portal.db") as db:  # a table of the admin's own, in the mirror's way
        db.execute("CREATE TABLE opportunitysplit (id INTEGER PRIMARY KEY, note TEXT)")
    with Emulator("cosell_demo", records=5, seed=2) as org:
        result = runner.invoke(app, ["mirror"], env=_env(org, tmp_path))
    assert result.exit_code == 2
    assert "OpportunitySplit: the database refused create_table" in result.output
    assert "already exists" in result.output and "nothing of the plan was applied" in result.output
    assert "Traceback" not in result.output
    with sqlite3.connect(tmp_path / "portal.db") as db:
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"opportunitysplit"}, "the other objects' tables were rolled back with it"
