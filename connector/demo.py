"""The first thing a new user runs: the story of one co-sold deal, told step by step
against the built-in org emulator and a throwaway SQLite portal database, through the
same stack the connector uses against a real org (JWT bearer login over verified TLS,
simple-salesforce, the schema mirror, the sync engine and the co-sell rules)."""

from __future__ import annotations

import csv
import datetime as dt
import tempfile
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.table import Table
from sqlalchemy import select, update

from connector.bootstrap import build
from connector.config import Settings
from connector.emulator import Emulator
from connector.marketplace import PayoutLedger, parse_feed, rules_from
from connector.overlaps import OverlapBook, pipeline_report
from connector.portal import Portal
from connector.reports import attribution_report
from connector.sync.engine import RunReport


def run_demo(*, records: int = 200, seed: int = 42, console: Console | None = None) -> int:
    console = console or Console()
    console.rule("[bold]cosell-connector: one co-sold deal, end to end[/bold]")
    with tempfile.TemporaryDirectory(prefix="cosell-demo-") as folder, \
            Emulator("cosell_demo", records=records, seed=seed) as org:
        info = org.connection_info()
        database = Path(folder) / "portal.db"
        connector = build(Settings(
            login_url=info["login_url"], auth="jwt", username=info["username"], consumer_key=info["consumer_key"],
            private_key=info["private_key"], ca_cert=info["ca_cert"], database_url=f"sqlite:///{database}",
            config=Path(folder) / "none.yaml", _env_file=None))
        step = _Steps(console, org)

        step("The vendor's Salesforce org and the partner portal",
             f"Org emulator at {info['instance_url']} with {records} co-sell opportunities; "
             f"portal database {database}. Logging in with the OAuth 2.0 JWT bearer flow over verified TLS.")
        plan = connector.mirror.plan()
        connector.mirror.apply(plan)
        console.print(f"  schema mirror: {len(plan.objects)} objects described in "
                      f"{connector.client.calls} API call(s) -> {len(plan.objects)} tables")
        first = step.sync(connector, "initial load")
        loaded = {n: c.created_local for n, c in first.objects.items() if c.created_local}
        console.print("  loaded: " + ", ".join(f"{n} {c}" for n, c in list(loaded.items())[:6]) + ", ...")

        partner = _account(org, "Partner_Type__c = 'System Integrator'")
        cloud = _account(org, "Partner_Type__c = 'Cloud Provider'")
        customer = _account(org, "Is_Partner__c = false AND BillingCountry = 'Germany' AND Website != null") or \
            _account(org, "Is_Partner__c = false AND Website != null")
        step("A partner's account-mapping export arrives",
             f"{partner['Name']}, a system integrator, shares its overlap export: its own spelling of the "
             "account names and web sites, its populations and record ids.")
        now = dt.datetime.now(dt.timezone.utc)
        export = Path(folder) / "overlaps.csv"
        export.write_text("Partner,Partner Account Name,Website,Partner Population,Partner Record ID,Country\n"
                          f"{partner['Name']},{customer['Name'].upper()},{customer['Website'].upper()},"
                          f"Open Opportunities,{partner['Name'][:3].upper()}-0042,{customer['BillingCountry']}\n"
                          f"{partner['Name']},Hooli Analytics,hooli-analytics.example,Prospects,"
                          f"{partner['Name'][:3].upper()}-0043,United States\n")
        book = OverlapBook.for_sync(connector.sync, writes=True)
        imported = book.import_file(export, at=now - dt.timedelta(days=9))
        for row in imported.rows:
            console.print(f"  line {row.line}: {row.account_name} -> [cyan]{row.status}[/cyan] "
                          f"{row.account or row.reason}")
        overlap = next(r for r in imported.rows if r.status == "matched")

        step("The overlap becomes a registered deal",
             "One call writes the Draft registration, its opportunity and the partner as participant; the role "
             "comes from the partner's type, the attribution from its population (an open opportunity: Sourced).")
        registered = book.register(overlap.overlap_id, name=f"{customer['Name']} - data platform migration",
                                   amount=Decimal("250000"), currency="EUR", close_date=dt.date(2025, 3, 28),
                                   program="Partner Sourced Incentive", at=now - dt.timedelta(days=7))
        deal = _Deal(registered["registration_uuid"], registered["opportunity_uuid"], registered["participant_uuid"])
        portal = Portal.for_sync(connector.sync)
        portal.submit(deal.registration, at=now - dt.timedelta(days=6))
        console.print(f"  portal: opportunity, participant and registration written locally (partner "
                      f"{partner['Name']}, end customer {customer['Name']}); registration submitted")
        step.sync(connector, "the sync creates the deal in Salesforce")
        registration = _org_registration(org, deal.registration)
        console.print(f"  Salesforce: Opportunity {registration['Opportunity__c']}, Deal_Registration__c "
                      f"{registration['Id']} status [cyan]{registration['Status__c']}[/cyan], no duplicate "
                      f"(upserted on Portal_Id__c = the portal row's UUID)")

        step("The partner edits the deal while the channel manager reviews it",
             "While a registration is under review, partner edits to its locked fields wait.")
        tables = connector.sync.tables(connector.sync.mirror.schemas())
        reg_table = tables["Deal_Registration__c"]
        with connector.engine.begin() as conn:
            conn.execute(update(reg_table).where(reg_table.c._uuid == deal.registration)
                         .values(registered_amount__c=Decimal("275000")))
        org.advance_clock(seconds=2)
        org.update("Deal_Registration__c", registration["Id"], {"Status__c": "Under Review"})
        held = step.sync(connector, "sync during the review")
        org_amount = org.get("Deal_Registration__c", registration["Id"])["Registered_Amount__c"]
        console.print(f"  the amount edit waits ({held.objects['Deal_Registration__c'].waiting} held): Salesforce "
                      f"still has {org_amount:,.0f}")
        org.advance_clock(seconds=2)
        org.update("Deal_Registration__c", registration["Id"], {
            "Status__c": "Approved", "Expiry_Date__c": "2025-09-30", "Decided_At__c": org.store.now_wire()})
        console.print("  the channel manager approves the registration in Salesforce")
        step.sync(connector, "sync after the decision")
        step.sync(connector, "and once more")
        after = org.get("Deal_Registration__c", registration["Id"])
        with connector.engine.connect() as conn:
            local_status = conn.execute(select(reg_table.c.status__c).where(
                reg_table.c._uuid == deal.registration)).scalar()
        console.print(f"  portal status [cyan]{local_status}[/cyan]; the held edit went out when the review "
                      f"ended: Salesforce amount {after['Registered_Amount__c']:,.0f}")

        step("A cloud provider's rep joins, and the revenue is split",
             "Participants are a set per opportunity; revenue splits must total exactly 100.")
        participant = portal.add_participant(deal.opportunity, cloud["Id"], role="Cloud Provider",
                                             attribution="Influenced")
        portal.set_splits(deal.opportunity, {deal.participant: ("Revenue", Decimal("60")),
                                             participant: ("Revenue", Decimal("40"))})
        step.sync(connector, "participants and splits to Salesforce")
        for p in org.records(f"SELECT Role__c, Attribution__c, Split_Percent__c, Partner_Account__r.Name "
                             f"FROM Co_Sell_Participant__c WHERE Opportunity__c = "
                             f"'{registration['Opportunity__c']}'"):
            console.print(f"  {p['Role__c']:<18} {p['Attribution__c']:<11} revenue split {p['Split_Percent__c']}%")

        step("The deal closes in euros in Salesforce",
             "Amounts keep their currency; reports convert at the dated rate of the close date.")
        org.advance_clock(seconds=2)
        org.update("Opportunity", registration["Opportunity__c"], {
            "StageName": "Closed Won", "Amount": 275000, "Cloud_Marketplace__c": "AWS Marketplace",
            "Marketplace_Offer_Id__c": "offer-demo-0042", "Marketplace_Agreement_Id__c": "agmt-demo-0042"})
        console.print("  sold through an AWS Marketplace private offer (agreement agmt-demo-0042)")
        step.sync(connector, "the win reaches the portal")

        rates = [r for r in org.org.features.multi_currency.dated_rates
                 if r.iso_code == "EUR" and r.start_date <= "2025-03-28"]
        rate = max(rates, key=lambda r: r.start_date)
        step("Attribution: who gets credit",
             f"This deal: 275,000.00 EUR / {rate.rate} (the EUR rate from {rate.start_date}) = "
             f"{Decimal(275000) / Decimal(str(rate.rate)):,.2f} USD. Per partner for 2025-Q1, all their deals, "
             "in the corporate currency at the dated rates:")
        names = {partner["Name"], cloud["Name"]}
        table = Table()
        for column in ("partner", "period", "attribution", "closed won (USD)", "split (USD)"):
            table.add_column(column)
        for row in attribution_report(connector.mirror, period="quarter"):
            if row.partner_name in names and row.period == "2025-Q1":
                table.add_row(row.partner_name, row.period, row.attribution, f"{row.closed_won:,.2f}",
                              f"{row.split_closed_won:,.2f}")
        console.print(table)

        step("The leading indicator: from overlap to approved registration",
             "Days from the overlap's import to the registration, its submission and its approval.")
        for row in pipeline_report(book):
            if row.partner == partner["Name"]:
                console.print("  " + ", ".join(f"{stage}: {getattr(row, stage).median_days:g} days"
                                               for stage in ("registered", "submitted", "approved")
                                               if getattr(row, stage).count))

        step("AWS Marketplace pays out; finance sees it in Salesforce",
             "The billing-event feed is matched to the deal through its agreement and compared in the deal's "
             "currency; status and net received go to the opportunity.")
        feed = Path(folder) / "billing_events.csv"
        columns = ["billing_event_id", "from_account_id", "to_account_id", "end_user_account_id", "product_id",
                   "agreement_id", "invoice_id", "invoice_date", "payment_due_date", "transaction_reference_id",
                   "parent_billing_event_id", "disbursement_billing_event_id", "bank_trace_id", "broker_id",
                   "amount", "currency", "balance_impacting", "action", "transaction_type"]
        event = dict.fromkeys(columns, "") | {
            "from_account_id": "210987654321", "to_account_id": "123456789012", "end_user_account_id": "100000000042",
            "product_id": "prod-data", "agreement_id": "agmt-demo-0042", "invoice_id": "inv-1",
            "invoice_date": "2025-04-01", "payment_due_date": "2025-05-01", "transaction_reference_id": "tr-demo-1",
            "currency": "EUR", "balance_impacting": "1", "action": "INVOICED"}
        with feed.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=columns)
            writer.writeheader()
            writer.writerow(event | {"billing_event_id": "be-demo-1", "amount": "275000.00",
                                     "transaction_type": "SELLER_REV_SHARE"})
            writer.writerow(event | {"billing_event_id": "be-demo-2", "amount": "-8250.00",
                                     "transaction_type": "AWS_REV_SHARE"})
            # the disbursement: what reached the bank, line by line against the invoiced lines
            paid = {"action": "DISBURSED", "disbursement_billing_event_id": "be-demo-pay", "bank_trace_id": "trace-1"}
            writer.writerow(event | paid | {"billing_event_id": "be-demo-3", "amount": "-275000.00",
                                            "transaction_type": "SELLER_REV_SHARE",
                                            "parent_billing_event_id": "be-demo-1"})
            writer.writerow(event | paid | {"billing_event_id": "be-demo-4", "amount": "8250.00",
                                            "transaction_type": "AWS_REV_SHARE", "parent_billing_event_id": "be-demo-2"})
            writer.writerow(event | {"billing_event_id": "be-demo-pay", "amount": "-266750.00", "action": "DISBURSED",
                                     "transaction_type": "DISBURSEMENT", "bank_trace_id": "trace-1"})
        result = PayoutLedger(connector.mirror).import_feed(parse_feed(feed), rules=rules_from(connector.settings))
        missing = result.reconciliation.counts().get("missing_payout", 0)
        console.print(f"  this deal: matched; {missing} other won marketplace deal(s) of the demo org have had no "
                      "payout for 45 days: Missing Payout (`cosell report reconciliation` lists them)")
        step.sync(connector, "reconciliation fields to Salesforce")
        won = org.get("Opportunity", registration["Opportunity__c"])
        console.print(f"  Salesforce: Reconciliation_Status__c [cyan]{won['Reconciliation_Status__c']}[/cyan], "
                      f"Net_Received_Amount__c {won['Net_Received_Amount__c']:,.2f} EUR (275,000.00 billed "
                      "less the 3% listing fee, disbursed to the bank)")
        step("Another partner claims the same customer: a channel conflict",
             "The customer is protected by the approved registration; a second partner registering a new deal "
             "there is flagged at once, kept with both claims, and flagged on the opportunity in Salesforce.")
        rival = _account(org, f"Is_Partner__c = true AND Partner_Type__c = 'Reseller' AND Id != '{partner['Id']}'") \
            or _account(org, f"Is_Partner__c = true AND Id != '{partner['Id']}' AND Id != '{cloud['Id']}'")
        claim = portal.register_deal(partner=rival["Id"], end_customer=customer["Id"],
                                     name=f"{customer['Name']} - analytics add-on", close_date=dt.date(2025, 6, 30),
                                     role="Reseller", attribution="Sourced")
        for found in claim.channel_conflicts:
            console.print(f"  [yellow]{found.kind}[/yellow]: " + (
                f"{rival['Name']} at {customer['Name']}, where {partner['Name']} holds the approved registration"
                if found.kind == "customer_claimed" else f"{rival['Name']} at {customer['Name']}, an account "
                "direct sales owns (its Type is Customer - Direct)" if found.kind == "direct_owned_account"
                else found.reason))
        step.sync(connector, "the flag to Salesforce")
        flagged = org.records(f"SELECT Channel_Conflict__c, Channel_Conflict_Reason__c FROM Opportunity WHERE "
                              f"Portal_Id__c = '{claim.opportunity}'")[0]
        console.print(f"  Salesforce: Channel_Conflict__c {flagged['Channel_Conflict__c']} "
                      f"({(flagged['Channel_Conflict_Reason__c'] or '')[:60]}...)")
        on_claim = [c for c in portal.conflicts.list() if claim.registration in c.registration_keys]
        for other in on_claim:   # every open conflict on the claim is decided before the flag clears
            if registration["Id"] in {k["registration_id"] for k in other.claims}:
                portal.conflicts.resolve(other.id, decision="honour", winner=registration["Id"],
                                         by="channel-ops@vendor", note="approved registration stands until its expiry")
            else:
                portal.conflicts.resolve(other.id, decision="dismiss", by="channel-ops@vendor",
                                         note="the direct team leaves this customer to the approved partner")
        stored = next(c for c in on_claim if c.kind == "customer_claimed")
        step.sync(connector, "the channel manager honours the approved claim")
        cleared = org.records(f"SELECT Channel_Conflict__c FROM Opportunity WHERE Portal_Id__c = "
                              f"'{claim.opportunity}'")[0]["Channel_Conflict__c"]
        console.print(f"  conflict {stored.id} resolved (honour, by channel-ops@vendor, recorded); "
                      f"Channel_Conflict__c {cleared}")

        step("The protection ends: the registration expires",
             "Its expiry date (2025-09-30) has passed on the org's clock; the co-sell step of the next sync moves "
             "it to Expired on both sides (also `cosell registrations expire`, and every hour under `cosell serve`).")
        from connector.scheduler import SyncRunner

        runner = SyncRunner(connector)
        runner.run(["Deal_Registration__c"], trigger="registrations")
        expired = org.get("Deal_Registration__c", registration["Id"])["Status__c"]
        console.print(f"  Salesforce: Deal_Registration__c {registration['Id']} status [cyan]{expired}[/cyan]")
        usage = connector.client.usage
        console.print(f"API calls the connector made: {connector.client.calls} (org usage {usage.used}/"
                      f"{usage.total}); a naive record-by-record integration makes one per record.")
        connector.engine.dispose()
    console.rule("done")
    return 0


@dataclass(frozen=True)
class _Deal:
    registration: str
    opportunity: str
    participant: str


class _Steps:
    def __init__(self, console: Console, org: Emulator):
        self.console, self.org, self.n = console, org, 0

    def __call__(self, title: str, text: str) -> None:
        self.n += 1
        self.console.print(f"\n[bold]{self.n}. {title}[/bold]")
        self.console.print(f"  [dim]{text}[/dim]")

    def sync(self, connector, label: str) -> RunReport:
        self.org.advance_clock(seconds=1)
        report = connector.sync.run()
        moved = {n: c for n, c in report.objects.items()
                 if c.created_remote or c.updated_remote or c.created_local or c.updated_local or c.deleted_local}
        summary = ", ".join(f"{n}: +{c.created_remote}~{c.updated_remote} to Salesforce, "
                            f"+{c.created_local}~{c.updated_local} to portal" for n, c in list(moved.items())[:4])
        self.console.print(f"  [green]sync[/green] ({label}): {report.status}, {report.api_calls} API call(s)"
                           + (f" - {summary}" if summary and len(moved) <= 4 else ""))
        if report.error:
            self.console.print(f"  [red]{report.error}[/red]")
        return report


def _account(org: Emulator, where: str) -> dict | None:
    rows = org.records(f"SELECT Id, Name FROM Account WHERE {where} ORDER BY Name LIMIT 1")
    return rows[0] if rows else None


def _org_registration(org: Emulator, portal_uuid: str) -> dict:
    return org.records(f"SELECT Id, Status__c, Opportunity__c FROM Deal_Registration__c "
                       f"WHERE Portal_Id__c = '{portal_uuid}'")[0]
