"""The first thing a new user runs: the built-in org emulator started with the
demo co-sell org, reached through the same stack the connector uses against a
real org (JWT bearer login, TLS verified against the emulator's certificate,
simple-salesforce), and a short tour of what is in it."""

from __future__ import annotations

from collections import Counter

import requests
from rich.console import Console
from rich.table import Table
from simple_salesforce import Salesforce

from connector.emulator import Emulator
from connector.salesforce.http import SalesforceSession
from connector.salesforce import auth


def run_demo(*, records: int = 200, seed: int = 42, console: Console | None = None) -> int:
    console = console or Console()
    console.rule("[bold]cosell-connector demo[/bold]")
    console.print(f"Starting the org emulator with the demo co-sell org ({records} opportunities)…")
    with Emulator("cosell_demo", records=records, seed=seed) as org:
        info = org.connection_info()
        console.print(f"  org served at [cyan]{info['instance_url']}[/cyan] "
                      f"(TLS certificate {info['ca_cert']})")
        session = SalesforceSession(ca_cert=info["ca_cert"])
        token = auth.jwt_bearer(session, login_url=info["login_url"], consumer_key=info["consumer_key"],
                                username=info["username"], private_key=info["private_key"])
        console.print(f"  logged in as [green]{info['username']}[/green] with the OAuth 2.0 JWT bearer flow")
        sf = Salesforce(session_id=token.access_token, instance_url=token.instance_url, session=session,
                        version=info["api_version"])

        described = sf.Opportunity.describe()
        custom = [f for f in described["fields"] if f["custom"]]
        table = Table(title="Custom co-sell fields on Opportunity (from describe)")
        for column in ("Field", "Type", "Values / size"):
            table.add_column(column)
        for f in custom:
            size = ", ".join(p["value"] for p in f["picklistValues"][:4]) if f["picklistValues"] else (
                f"{f['precision']},{f['scale']}" if f["type"] in ("currency", "percent") else str(f["length"] or ""))
            table.add_row(f["name"], f["type"], size)
        console.print(table)

        opportunities = list(sf.query_all_iter(
            "SELECT Id, Name, Account.Name, Amount, CurrencyIsoCode, StageName, CloseDate, Co_Sell_Motion__c "
            "FROM Opportunity ORDER BY CloseDate DESC, Name"))
        participants = Counter()
        for p in sf.query_all_iter("SELECT Opportunity__c, Role__c FROM Co_Sell_Participant__c"):
            participants[p["Opportunity__c"]] += 1
        table = Table(title=f"Latest of {len(opportunities)} co-sell opportunities (amounts in their own currency)")
        for column in ("Opportunity", "Amount", "Stage", "Motion", "Parties"):
            table.add_column(column, overflow="fold")
        for o in opportunities[:8]:
            amount = f"{o['Amount']:,.2f} {o['CurrencyIsoCode']}" if o["Amount"] is not None else "—"
            table.add_row(o["Name"], amount, o["StageName"], o["Co_Sell_Motion__c"] or "—",
                          str(participants[o["Id"]]))
        console.print(table)

        statuses = Counter(r["Status__c"] for r in sf.query_all_iter("SELECT Status__c FROM Deal_Registration__c"))
        console.print("Deal registrations by status: " +
                      ", ".join(f"{status} {n}" for status, n in sorted(statuses.items())))
        usage = sf.api_usage.get("api-usage")
        console.print(f"API calls this demo made: {org.calls.total()} "
                      f"(org usage {usage.used}/{usage.total} from Sforce-Limit-Info)")
    console.rule("done")
    return 0
