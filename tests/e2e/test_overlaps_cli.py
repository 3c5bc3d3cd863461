"""`cosell overlaps ...` and `cosell report pipeline` as an admin runs them: an export imported
and listed, a re-import that changes nothing, a refused file (exit 2, the line and the reason),
a review row settled, a registration made and carried to Salesforce by `cosell sync`."""

from __future__ import annotations

import json

from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator
from tests.e2e.test_mirror_cli import _env

runner = CliRunner()
EXPORT = ("Partner,Partner Account Name,Website,Population,Partner Record ID,Country\n"
          "CLI Partner,Cli Customer,www.CLI-customer.example,Open Opportunities,c-1,\n"
          "CLI Partner,Cli Twin,,Customers,c-2,\n")


def _ok(args, env):
    result = runner.invoke(app, args, env=env)
    assert result.exit_code == 0, result.output
    return result.output


def test_import_review_register_and_sync_from_the_command_line(tmp_path):
    with Emulator("cosell_demo", records=5, seed=3) as org:
        partner = org.create("Account", {"Name": "CLI Partner", "Is_Partner__c": True})
        customer = org.create("Account", {"Name": "Cli Customer", "Website": "cli-customer.example"})
        twin = org.create("Account", {"Name": "Cli Twin", "BillingCountry": "Norway"})
        env = {**_env(org, tmp_path), "COLUMNS": "220"}      # rich wraps tables at the terminal width
        org.advance_clock(seconds=1)   # a read covers whole seconds: records of the current one come next run
        assert "Change capture is on" in _ok(["mirror"], env)
        # A portal write by plain SQL between `cosell mirror` and the first `cosell sync` is not missed.
        with create_engine(env["COSELL_DATABASE_URL"]).begin() as conn:
            conn.execute(text("INSERT INTO account (name) VALUES ('Made before the first sync')"))
        export = tmp_path / "overlaps.csv"
        export.write_text(EXPORT)

        dry = _ok(["overlaps", "import", str(export), "--dry-run"], env)
        assert "dry run: nothing written" in dry
        assert json.loads(_ok(["overlaps", "list", "--format", "json"], env)) == []
        first = _ok(["overlaps", "import", str(export)], env)
        assert "2 rows: 1 matched, 1 review, 0 unmatched; 2 new" in first
        assert "no country to confirm it" in first and "cosell overlaps resolve" in first
        again = _ok(["overlaps", "import", str(export)], env)
        assert "nothing changed since the last import" in again

        # Tried: the same file with one line doubled and another without a record id.
        bad = tmp_path / "bad.csv"
        bad.write_text(EXPORT + "CLI Partner,Cli Twin,,Customers,c-2,\nCLI Partner,Other,,Customers,,\n")
        refused = runner.invoke(app, ["overlaps", "import", str(bad)], env=env)
        assert refused.exit_code == 2
        assert "line 4: duplicate of line 3" in refused.output and "line 5: empty partner_record_id" in refused.output

        listed = {r["account_name"]: r for r in json.loads(_ok(["overlaps", "list", "--format", "json"], env))}
        review_id = listed["Cli Twin"]["id"]
        not_yet = runner.invoke(app, ["overlaps", "register", str(review_id)], env=env)
        assert not_yet.exit_code == 2 and "is review, not matched" in not_yet.output
        assert "matched to Cli Twin" in _ok(["overlaps", "resolve", str(review_id), "--account", twin], env)

        made = _ok(["overlaps", "register", str(listed["Cli Customer"]["id"]), "--close-date", "2026-12-15",
                    "--amount", "120000"], env)
        assert "Draft registration" in made and "cosell sync" in made
        org.advance_clock(seconds=1)
        _ok(["sync"], env)
        assert org.records("SELECT Id FROM Account WHERE Name = 'Made before the first sync'")
        (reg,) = org.records("SELECT Status__c, Partner_Account__c, Registered_Amount__c FROM Deal_Registration__c "
                             f"WHERE End_Customer_Account__c = '{customer}'")
        assert (reg["Status__c"], reg["Partner_Account__c"], reg["Registered_Amount__c"]) == ("Draft", partner, 120000)

        report = {r["partner"]: r for r in json.loads(_ok(["report", "pipeline", "--format", "json"], env))}
        assert report["CLI Partner"]["overlaps"] == 2 and report["CLI Partner"]["registered_count"] == 1
        assert "CLI Partner" in _ok(["report", "pipeline"], env)
