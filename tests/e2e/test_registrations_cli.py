"""`cosell registrations expire` and `cosell conflicts list/resolve` as a cron user and an admin run them
(issue 14): an expiry on the org's clock reaches Salesforce, a channel conflict is listed and settled, and a
bad resolution is one clear line with exit status 2."""

from __future__ import annotations

import datetime as dt
import json

from typer.testing import CliRunner

from connector.cli import app
from connector.emulator import Emulator
from tests.e2e.test_mirror_cli import _env

runner = CliRunner()


def test_expire_and_conflicts_from_the_command_line(tmp_path):
    with Emulator("cosell_demo", records=10, seed=4) as org:
        env = {**_env(org, tmp_path), "COLUMNS": "200"}
        partner = org.create("Account", {"Name": "Cron Partner", "Is_Partner__c": True})
        customer = org.create("Account", {"Name": "Cron Direct Customer", "Type": "Customer - Direct"})
        opp = org.create("Opportunity", {"Name": "Cron deal", "StageName": "Qualification",
                                         "CloseDate": "2027-01-31", "AccountId": customer})
        soon = (org.clock.now().date() + dt.timedelta(days=2)).isoformat()
        reg = org.create("Deal_Registration__c", {"Opportunity__c": opp, "Status__c": "Approved",
                                                  "Partner_Account__c": partner,
                                                  "End_Customer_Account__c": customer, "Expiry_Date__c": soon})
        assert runner.invoke(app, ["mirror"], env=env).exit_code == 0
        org.advance_clock(seconds=1)
        first = runner.invoke(app, ["sync"], env=env)
        assert first.exit_code == 0, first.output
        listed = runner.invoke(app, ["conflicts", "list", "--format", "json"], env=env)
        assert listed.exit_code == 0, listed.output
        mine = [c for c in json.loads(listed.output)
                if any(x["end_customer_name"] == "Cron Direct Customer" for x in c["claims"])]
        assert [c["kind"] for c in mine] == ["direct_owned_account"]
        bad = runner.invoke(app, ["conflicts", "resolve", str(mine[0]["id"]), "--decision", "dismiss",
                                  "--by", "ops"], env=env)
        assert bad.exit_code == 2 and "needs a note" in bad.output and "Traceback" not in bad.output
        good = runner.invoke(app, ["conflicts", "resolve", str(mine[0]["id"]), "--decision", "honour",
                                   "--winner", reg, "--by", "ops"], env=env)
        assert good.exit_code == 0 and "resolved: honour by ops" in good.output
        org.advance_clock(days=7)
        expired = runner.invoke(app, ["registrations", "expire"], env=env)
        assert expired.exit_code == 0, expired.output
        assert f"1 registration(s) expired: {reg}" in " ".join(expired.output.split())
        assert org.get("Deal_Registration__c", reg)["Status__c"] == "Expired"
