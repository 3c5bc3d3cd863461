"""`cosell emulator serve` and `cosell demo` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from simple_salesforce import Salesforce

from connector.salesforce import auth
from connector.salesforce.http import SalesforceSession


def test_serve_prints_connection_json_first_and_accepts_jwt_logins():
    process = subprocess.Popen([sys.executable, "-m", "connector.cli", "emulator", "serve", "--records", "10"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        info = json.loads(process.stdout.readline())
        assert {"instance_url", "login_url", "access_token", "ca_cert", "username", "consumer_key",
                "private_key"} <= info.keys()
        assert info["instance_url"].startswith("https://127.0.0.1:")
        session = SalesforceSession(ca_cert=info["ca_cert"])
        token = auth.jwt_bearer(session, login_url=info["login_url"], consumer_key=info["consumer_key"],
                                username=info["username"], private_key=info["private_key"])
        sf = Salesforce(session_id=token.access_token, instance_url=token.instance_url, session=session)
        assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] == 10
        direct = Salesforce(session_id=info["access_token"], instance_url=info["instance_url"], session=session)
        assert direct.query("SELECT COUNT() FROM User")["totalSize"] >= 1
    finally:
        process.terminate()
        assert process.wait(timeout=30) == 0, "SIGTERM stops the emulator cleanly"


def test_serve_with_an_unknown_org_fails_with_a_clear_message():
    result = subprocess.run([sys.executable, "-m", "connector.cli", "emulator", "serve", "--org", "nope"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "no org 'nope'" in result.stderr and "cosell_demo" in result.stderr


def test_demo_runs_end_to_end():
    result = subprocess.run([sys.executable, "-m", "connector.cli", "demo", "--records", "30"],
                            capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())  # rich wraps lines at the terminal width
    assert "JWT bearer" in out and "A partner's account-mapping export arrives" in out
    assert "-> matched" in out and "Hooli Analytics -> unmatched" in out      # the export's messy spelling matched
    assert "The overlap becomes a registered deal" in out
    assert "status Submitted" in out and "the amount edit waits (1 held)" in out
    assert "Salesforce amount 275,000" in out and "revenue split 60" in out
    assert "Attribution: who gets credit" in out and "failed" not in out
    assert "registered: 2 days, submitted: 3 days, approved: 9 days" in out
    assert "Reconciliation_Status__c Matched, Net_Received_Amount__c 266,750.00 EUR" in out
    # issue 14: a channel conflict caught and resolved, and an expiry, both reaching Salesforce
    assert "customer_claimed:" in out and "Channel_Conflict__c True" in out
    assert "resolved (honour, by channel-ops@vendor, recorded); Channel_Conflict__c False" in out
    assert "status Expired" in out
