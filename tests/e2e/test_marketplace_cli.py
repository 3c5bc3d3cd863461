"""`cosell marketplace import` and `cosell report reconciliation` as finance runs them: a refused
file exits 2 with its line and reason, a good one prints the outcome summary, the report lists the
exceptions. The commands are mounted on a local app here, as connector.cli mounts them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import typer
from typer.testing import CliRunner

from connector.cli import app as cosell
from connector.emulator import Emulator
from connector.marketplace.cli import marketplace_app, report_reconciliation
from tests.e2e.test_mirror_cli import _env

DATA = Path(__file__).parents[1] / "data" / "marketplace"
runner = CliRunner()
app = typer.Typer()
app.add_typer(marketplace_app, name="marketplace")
reports = typer.Typer()
reports.command("reconciliation")(report_reconciliation)
app.add_typer(reports, name="report")


def test_import_refuses_a_bad_file_then_imports_reconciles_and_reports(tmp_path):
    bad = tmp_path / "bad.csv"
    rows = (DATA / "aws_billing_events.csv").read_text().splitlines()
    bad.write_text("\n".join([rows[0], rows[1], rows[2].replace(",USD,", ",US$,")]) + "\n")
    refused = runner.invoke(app, ["marketplace", "import", str(bad)])
    assert refused.exit_code == 2
    assert "bad.csv, line 3: currency must be an ISO 4217 code such as USD, not 'US$'" in refused.output

    with Emulator("cosell_demo", records=5, seed=3) as org:
        org.create("Opportunity", {"Name": "CLI short deal", "StageName": "Closed Won", "CloseDate": "2025-02-14",
                                   "Amount": 50000, "CurrencyIsoCode": "USD", "Cloud_Marketplace__c": "AWS Marketplace",
                                   "Marketplace_Offer_Id__c": "offer-cli", "Marketplace_Agreement_Id__c": "agmt-SHORT"})
        env = _env(org, tmp_path)
        org.advance_clock(seconds=1)   # a read covers whole seconds: records of the current one come next run
        assert runner.invoke(cosell, ["mirror"], env=env).exit_code == 0
        imported = runner.invoke(app, ["marketplace", "import", str(DATA / "aws_billing_events.csv"),
                                       "--agreements", str(DATA / "agreements.csv"), "--as-of", "2025-06-01"],
                                 env=env)
        assert imported.exit_code == 0, imported.output
        assert "37 line(s): 37 new, 0 already imported; 1 agreement(s) added" in imported.output
        assert "amount mismatch CLI short deal" in imported.output
        again = runner.invoke(app, ["marketplace", "import", str(DATA / "aws_billing_events.csv"),
                                    "--as-of", "2025-06-01"], env=env)
        assert "0 new, 37 already imported" in again.output and "Opportunities changed: 0" in again.output

        report = runner.invoke(app, ["report", "reconciliation", "--format", "csv"], env=env)
        assert report.exit_code == 0, report.output
        listed = {r["deal_name"] or r["subject"]: r for r in csv.DictReader(io.StringIO(report.output))}
        assert listed["CLI short deal"]["status"] == "amount_mismatch"
        assert listed["CLI short deal"]["difference"] == "-5000.00"
        assert listed["aws:agreement:agmt-ORPHAN"]["status"] == "payout_without_deal"
        table = runner.invoke(app, ["report", "reconciliation"], env={**env, "COLUMNS": "250"})
        assert table.exit_code == 0 and "exceptions" in table.output and "CLI short deal" in table.output
